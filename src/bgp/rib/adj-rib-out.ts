// One peer's Adj-RIB-Out (RFC 4271 §3.2): what we have told the peer, and which prefixes may need
// telling again. The session asks pendingFor() for the difference, sends it, then calls
// markSent(); only then does the difference count as told. Prefixes that change between the two
// calls stay pending for the next round.
//
// Per prefix we keep a reference to the shared OutboundAttributes it was sent with, so a diff is
// one lookup and, usually, one identity comparison. The diff groups prefixes by identical
// outgoing attributes (the key), so the codec can pack hundreds into one UPDATE. The tables are
// keyed by numeric prefix (../prefix/prefix-table.ts); prefix text is made only for what is sent.

import type { OutboundAttributes } from '../policy/export-policy.js';
import { PrefixList } from '../prefix/prefix-list.js';
import { PrefixTable } from '../prefix/prefix-table.js';
import type { Family, PathAttributes, Prefix } from '../types.js';

/** Prefixes that go out with the same attributes and next hops. */
export interface AnnounceGroup {
  readonly family: Family;
  readonly attributes: PathAttributes;
  readonly nextHops: readonly string[];
  readonly prefixes: readonly Prefix[];
}

/** What to send a peer: announcements keyed by {@link OutboundAttributes.key}, withdrawals per family. */
export interface PendingUpdate {
  readonly announce: ReadonlyMap<string, AnnounceGroup>;
  readonly withdraw: ReadonlyMap<Family, readonly Prefix[]>;
}

/** The Loc-RIB through one peer's export policy. Prefixes are given as entry `e` of `table`. */
export interface ExportView {
  /** The outgoing form of the best route for the prefix; undefined when nothing should be sent. */
  exportOne(table: PrefixTable<unknown>, e: number): OutboundAttributes | undefined;
  /** exportOne() for every prefix in the Loc-RIB of `family`, walking it once. */
  exportAll(family: Family, visit: (table: PrefixTable<unknown>, e: number, out: OutboundAttributes | undefined) => void): void;
  /** Whether the Loc-RIB holds the prefix. */
  has(table: PrefixTable<unknown>, e: number): boolean;
}

/** A group of the last pendingFor(), with the keys of its prefixes, kept for markSent(). */
interface Computed {
  readonly out: OutboundAttributes;
  readonly group: AnnounceGroup & { readonly prefixes: Prefix[] };
  readonly keys: PrefixList;
}

/** One family's withdrawals of the last pendingFor(): the text sent and the keys for markSent(). */
interface Withdrawals {
  readonly prefixes: Prefix[];
  readonly keys: PrefixList;
}

class FamilyOut {
  readonly sent: PrefixTable<OutboundAttributes>;
  /** Changed since the last pendingFor(). */
  dirty: PrefixTable<true>;
  /** Covered by the last pendingFor() and not yet marked sent. */
  claimed: PrefixTable<true>;
  /** Compare the whole Loc-RIB and everything sent (new session, refresh, policy change). */
  fullNeeded = false;
  fullClaimed = false;

  constructor(readonly family: Family) {
    this.sent = new PrefixTable(family);
    this.dirty = new PrefixTable(family);
    this.claimed = new PrefixTable(family);
  }
}

export class AdjRibOut {
  private readonly byFamily: ReadonlyMap<Family, FamilyOut>;
  /** The difference the last pendingFor() returned, committed by markSent(). */
  private computed: { announce: Computed[]; withdraw: Map<Family, Withdrawals> } | undefined;

  constructor(families: readonly Family[]) {
    this.byFamily = new Map(families.map((f) => [f, new FamilyOut(f)]));
    // A new session: the peer has nothing from us yet.
    for (const out of this.byFamily.values()) out.fullNeeded = true;
  }

  /** The best route for the prefix at `words[at..]`/`len` (`h` its hash) changed. */
  touch(family: Family, words: Uint32Array, at: number, len: number, h: number): void {
    const out = this.byFamily.get(family);
    if (out === undefined || out.fullNeeded) return;
    if (out.dirty.find(words, at, len, h) < 0) out.dirty.insert(words, at, len, true, h);
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
        const { dirty, claimed } = out;
        for (let e = dirty.next(0); e >= 0; e = dirty.next(e + 1)) {
          if (claimed.findEntryOf(dirty, e) < 0) claimed.insert(dirty.keyWords, dirty.keyOffset(e), dirty.lengthAt(e), true);
        }
        dirty.clear();
      }
      const { sent } = out;
      if (out.fullClaimed) {
        view.exportAll(family, (table, e, next) => diff.add(table, e, sentAt(sent, table, e), next));
        for (let e = sent.next(0); e >= 0; e = sent.next(e + 1)) if (!view.has(sent, e)) diff.add(sent, e, sent.valueAt(e), undefined);
      } else {
        const { claimed } = out;
        for (let e = claimed.next(0); e >= 0; e = claimed.next(e + 1)) diff.add(claimed, e, sentAt(sent, claimed, e), view.exportOne(claimed, e));
      }
    }
    this.computed = { announce: diff.computed, withdraw: diff.withdrawals };
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
    for (const { out, group, keys } of computed.announce) {
      const sent = this.byFamily.get(group.family)!.sent;
      for (let i = 0; i < keys.count; i++) sent.set(keys.words, i * keys.stride, keys.lens[i]!, out);
    }
    for (const [family, { keys }] of computed.withdraw) {
      const sent = this.byFamily.get(family)!.sent;
      for (let i = 0; i < keys.count; i++) sent.delete(keys.words, i * keys.stride, keys.lens[i]!);
    }
    for (const out of this.byFamily.values()) out.sent.compact();
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

/** What was sent for entry `e` of `table` (a table of the same family). */
function sentAt(sent: PrefixTable<OutboundAttributes>, table: PrefixTable<unknown>, e: number): OutboundAttributes | undefined {
  const s = sent.findEntryOf(table, e);
  return s < 0 ? undefined : sent.valueAt(s);
}

/** Builds one PendingUpdate. */
class Diff {
  readonly announce = new Map<string, AnnounceGroup>();
  readonly withdraw = new Map<Family, Prefix[]>();
  readonly withdrawals = new Map<Family, Withdrawals>();
  readonly computed: Computed[] = [];
  private readonly byKey = new Map<string, Computed>();
  // The prefixes of one received UPDATE arrive in a row with one OutboundAttributes.
  private last: Computed | undefined;

  add(table: PrefixTable<unknown>, e: number, prev: OutboundAttributes | undefined, next: OutboundAttributes | undefined): void {
    const family = table.family;
    if (next === undefined) {
      if (prev === undefined) return;
      let w = this.withdrawals.get(family);
      if (w === undefined) {
        w = { prefixes: [], keys: new PrefixList(family) };
        this.withdrawals.set(family, w);
        this.withdraw.set(family, w.prefixes);
      }
      w.prefixes.push(table.text(e));
      table.copyKey(e, w.keys);
      return;
    }
    // Identity first: prefixes from one received UPDATE share one OutboundAttributes.
    if (prev !== undefined && (prev === next || prev.key === next.key)) return;
    let c = this.last;
    if (c === undefined || c.out.key !== next.key) {
      c = this.byKey.get(next.key);
      if (c === undefined) {
        c = { out: next, group: { family, attributes: next.attributes, nextHops: next.nextHops, prefixes: [] }, keys: new PrefixList(family) };
        this.byKey.set(next.key, c);
        this.announce.set(next.key, c.group);
        this.computed.push(c);
      }
      this.last = c;
    }
    c.group.prefixes.push(table.text(e));
    table.copyKey(e, c.keys);
  }
}
