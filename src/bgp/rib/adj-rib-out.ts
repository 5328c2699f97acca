// One peer's Adj-RIB-Out (RFC 4271 §3.2): what we have told the peer, and which prefixes may need
// telling again. The session asks pendingFor() for the difference, sends it, then calls
// markSent(); only then does the difference count as told. Prefixes that change between the two
// calls stay pending for the next round.
//
// Per prefix we keep a reference to the shared OutboundAttributes it was sent with, so a diff is
// one Map lookup and, usually, one identity comparison. The diff groups prefixes by identical
// outgoing attributes (the key), so the codec can pack hundreds into one UPDATE.

import type { OutboundAttributes } from '../policy/export-policy.js';
import type { Family, PathAttributes, Prefix } from '../types.js';

/** Prefixes that go out with the same attributes and next hops. */
export interface AnnounceGroup {
  readonly family: Family;
  readonly attributes: PathAttributes;
  readonly nextHops: readonly string[];
  /** Read-only: markSent() reads these very arrays back. */
  readonly prefixes: readonly Prefix[];
}

/** What to send a peer: announcements keyed by {@link OutboundAttributes.key}, withdrawals per family. */
export interface PendingUpdate {
  readonly announce: ReadonlyMap<string, AnnounceGroup>;
  readonly withdraw: ReadonlyMap<Family, readonly Prefix[]>;
}

/** The Loc-RIB through one peer's export policy. */
export interface ExportView {
  /** The outgoing form of the best route for `prefix`; undefined when nothing should be sent. */
  exportOne(family: Family, prefix: Prefix): OutboundAttributes | undefined;
  /** exportOne() for every prefix in the Loc-RIB, walking it once. */
  exportAll(family: Family, visit: (prefix: Prefix, out: OutboundAttributes | undefined) => void): void;
  /** Whether the Loc-RIB holds `prefix`. */
  has(family: Family, prefix: Prefix): boolean;
}

/** The groups of the last pendingFor(), kept for markSent(). */
interface Computed {
  readonly out: OutboundAttributes;
  readonly group: AnnounceGroup & { readonly prefixes: Prefix[] };
}

class FamilyOut {
  readonly sent = new Map<Prefix, OutboundAttributes>();
  /** Changed since the last pendingFor(). */
  dirty = new Set<Prefix>();
  /** Covered by the last pendingFor() and not yet marked sent. */
  claimed = new Set<Prefix>();
  /** Compare the whole Loc-RIB and everything sent (new session, refresh, policy change). */
  fullNeeded = false;
  fullClaimed = false;
}

export class AdjRibOut {
  private readonly byFamily: ReadonlyMap<Family, FamilyOut>;
  /** The difference the last pendingFor() returned, committed by markSent(). */
  private computed: { announce: Computed[]; withdraw: Map<Family, Prefix[]> } | undefined;

  constructor(families: readonly Family[]) {
    this.byFamily = new Map(families.map((f) => [f, new FamilyOut()]));
    // A new session: the peer has nothing from us yet.
    for (const out of this.byFamily.values()) out.fullNeeded = true;
  }

  /** The best route for `prefix` changed. */
  touch(family: Family, prefix: Prefix): void {
    const out = this.byFamily.get(family);
    if (out !== undefined && !out.fullNeeded) out.dirty.add(prefix);
  }

  /**
   * Compare everything on the next pendingFor(). With `forget` (a new session, or a ROUTE-REFRESH
   * request, RFC 2918 §4) the peer is taken to hold nothing from us, so everything is sent again.
   */
  requireFull(family: Family | undefined, forget: boolean): void {
    for (const [f, out] of this.byFamily) {
      if (family !== undefined && f !== family) continue;
      out.fullNeeded = true;
      out.dirty.clear();
      if (forget) {
        // An answer computed for the old session must not be committed into the new one.
        out.sent.clear();
        this.dropComputed(f);
        out.claimed.clear();
        out.fullClaimed = false;
      }
    }
  }

  private dropComputed(family: Family): void {
    const c = this.computed;
    if (c === undefined) return;
    // A copy: the caller holds the original withdraw map.
    const withdraw = new Map(c.withdraw);
    withdraw.delete(family);
    this.computed = { announce: c.announce.filter((x) => x.group.family !== family), withdraw };
  }

  /** The difference between what the peer should have and what it was sent (see the file comment). */
  pending(view: ExportView): PendingUpdate {
    const diff = new Diff();
    for (const [family, out] of this.byFamily) {
      if (out.fullNeeded) {
        out.fullNeeded = false;
        out.fullClaimed = true;
      } else if (out.claimed.size === 0) {
        [out.claimed, out.dirty] = [out.dirty, out.claimed];
      } else {
        for (const p of out.dirty) out.claimed.add(p);
        out.dirty.clear();
      }
      const { sent } = out;
      if (out.fullClaimed) {
        view.exportAll(family, (prefix, next) => diff.add(family, prefix, sent.get(prefix), next));
        for (const [prefix, prev] of sent) if (!view.has(family, prefix)) diff.add(family, prefix, prev, undefined);
      } else {
        for (const prefix of out.claimed) diff.add(family, prefix, sent.get(prefix), view.exportOne(family, prefix));
      }
    }
    this.computed = { announce: diff.computed, withdraw: diff.withdraw };
    return { announce: diff.announce, withdraw: diff.withdraw };
  }

  /** The last pendingFor() result was sent. */
  markSent(): void {
    const computed = this.computed;
    this.computed = undefined;
    for (const out of this.byFamily.values()) {
      out.claimed.clear();
      out.fullClaimed = false;
    }
    if (computed === undefined) return;
    for (const { out, group } of computed.announce) {
      const sent = this.byFamily.get(group.family)!.sent;
      for (const prefix of group.prefixes) sent.set(prefix, out);
    }
    for (const [family, prefixes] of computed.withdraw) {
      const sent = this.byFamily.get(family)!.sent;
      for (const prefix of prefixes) sent.delete(prefix);
    }
  }

  /** How many prefixes the peer holds from us. */
  sentCount(family?: Family): number {
    let n = 0;
    for (const [f, out] of this.byFamily) if (family === undefined || f === family) n += out.sent.size;
    return n;
  }

  /** Prefixes waiting for pendingFor(), or 'full' when everything is to be compared. */
  pendingCount(): number | 'full' {
    let n = 0;
    for (const out of this.byFamily.values()) {
      if (out.fullNeeded) return 'full';
      n += out.dirty.size;
    }
    return n;
  }
}

/** Builds one PendingUpdate. */
class Diff {
  readonly announce = new Map<string, AnnounceGroup>();
  readonly withdraw = new Map<Family, Prefix[]>();
  readonly computed: Computed[] = [];
  private readonly byKey = new Map<string, Computed>();
  // The prefixes of one received UPDATE arrive in a row with one OutboundAttributes.
  private last: Computed | undefined;

  add(family: Family, prefix: Prefix, prev: OutboundAttributes | undefined, next: OutboundAttributes | undefined): void {
    if (next === undefined) {
      if (prev === undefined) return;
      const list = this.withdraw.get(family);
      if (list !== undefined) list.push(prefix);
      else this.withdraw.set(family, [prefix]);
      return;
    }
    // Identity first: prefixes from one received UPDATE share one OutboundAttributes.
    if (prev !== undefined && (prev === next || prev.key === next.key)) return;
    let c = this.last;
    if (c === undefined || c.out.key !== next.key) {
      c = this.byKey.get(next.key);
      if (c === undefined) {
        c = { out: next, group: { family, attributes: next.attributes, nextHops: next.nextHops, prefixes: [] } };
        this.byKey.set(next.key, c);
        this.announce.set(next.key, c.group);
        this.computed.push(c);
      }
      this.last = c;
    }
    c.group.prefixes.push(prefix);
  }
}
