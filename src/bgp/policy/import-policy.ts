// Import policy: which received routes enter a peer's Adj-RIB-In (RFC 4271 §9.1.1). Twill's
// policy (reference/bgp.md §1): accept only prefixes inside the cluster network, between the
// per-node block size and /32 (/128), never a default route, never our own block, and only with a
// next hop we can reach on a link and that is not our own (next-hop.ts). Plus the loop checks the
// RFCs require, and a limit on how many routes one peer may give us.
//
// `accept` empty means accept nothing. An agent that installs what it learns into the kernel must
// not take an arbitrary table by default (the same stance as RFC 8212 for eBGP); the agent fills
// `accept` with the cluster network.
//
// The RIB decides received routes through a PeerImport (peer-import.ts), this policy compiled
// for one peer at session setup; evaluate() here is the same decision for one route given as
// text, for callers outside the RIB.

import { InvalidArgumentError } from '../../core/errors.js';
import { IPV6_FLAG, readPrefixWords } from '../prefix/prefix-text.js';
import type { Prefix, Route } from '../types.js';
import { reject, type ImportContext, type ImportVerdict } from './import-verdict.js';
import { PeerImport, type ImportRules } from './peer-import.js';
import { PrefixSet, prefixRange, type PrefixRangeInput } from './prefix-set.js';

export { reject, type ImportContext, type ImportVerdict, type RejectReason } from './import-verdict.js';

export interface ImportPolicyConfig {
  /** Ranges a prefix must match to be accepted. Empty: accept nothing. */
  readonly accept: readonly PrefixRangeInput[];
  /** Reject 0.0.0.0/0 and ::/0 even when `accept` covers them. Default true. */
  readonly rejectDefaultRoute?: boolean | undefined;
  /**
   * Blocks whose prefixes are refused, the block itself and everything inside it (our own pod
   * block: a more-specific route learned for it would take our pods' traffic).
   */
  readonly rejectPrefixes?: readonly Prefix[] | undefined;
  /**
   * Most accepted routes per family in one peer's Adj-RIB-In; beyond it the session sends Cease/1
   * (RFC 4486). Default {@link DEFAULT_MAX_PREFIXES}: a peer that leaks a full table must not
   * fill the agent's memory and the kernel's routing table.
   */
  readonly maxPrefixes?: number | undefined;
  /**
   * What `maxPrefixes` counts: 'family' (default), each family's routes on their own; 'peer', the
   * peer's routes of all families together (a dual-stack peer cannot send twice the limit).
   */
  readonly maxPrefixScope?: 'family' | 'peer' | undefined;
  /**
   * True for a next hop we can install (on a connected link). Called for each route that passed
   * the prefix and loop checks, and not remembered (links come and go): keep it cheap.
   */
  readonly requireOnLinkNextHop?: ((nextHop: string) => boolean) | undefined;
}

/** Routes per family one peer may give us when its policy names no limit (a cluster has far fewer nodes). */
export const DEFAULT_MAX_PREFIXES = 10_000;

/** A compiled, immutable import policy. One object may serve many peers. */
export class ImportPolicy implements ImportRules {
  readonly accept: PrefixSet;
  readonly rejectDefaultRoute: boolean;
  readonly rejectPrefixes: PrefixSet;
  readonly maxPrefixes: number;
  readonly maxPrefixScope: 'family' | 'peer';
  readonly requireOnLinkNextHop: ((nextHop: string) => boolean) | undefined;
  /** evaluate()'s compiled forms, one per context it was given. */
  private readonly compiled = new WeakMap<ImportContext, PeerImport>();
  private readonly words = new Uint32Array(4);

  constructor(config: ImportPolicyConfig) {
    this.accept = new PrefixSet(config.accept, 'accepted prefix range');
    this.rejectDefaultRoute = config.rejectDefaultRoute ?? true;
    this.rejectPrefixes = new PrefixSet(
      (config.rejectPrefixes ?? []).map((p) => prefixRange(p, { le: p.includes(':') ? 128 : 32 }, 'rejected prefix')),
    );
    const max = config.maxPrefixes;
    if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
      throw new InvalidArgumentError('max prefixes', max, 'must be a positive integer');
    }
    this.maxPrefixes = max ?? DEFAULT_MAX_PREFIXES;
    this.maxPrefixScope = config.maxPrefixScope ?? 'family';
    this.requireOnLinkNextHop = config.requireOnLinkNextHop;
  }

  /** This policy compiled for one peer (the RIB makes one per peer when its session is established). */
  forPeer(context: ImportContext): PeerImport {
    return new PeerImport(this, context);
  }

  /** Decides one received route; `context` should be the same object for every call from one peer. */
  evaluate(route: Route, context: ImportContext): ImportVerdict {
    const read = readPrefixWords(route.prefix, this.words);
    if (read < 0) return reject('malformed-prefix');
    const v6 = (read & IPV6_FLAG) !== 0;
    if (v6 !== (route.family === 'ipv6-unicast')) return reject('family-mismatch');
    let peer = this.compiled.get(context);
    if (peer === undefined) this.compiled.set(context, (peer = this.forPeer(context)));
    peer.begin();
    return peer.verdict(v6 ? 4 : 1, this.words, 0, read & 0xff, route);
  }
}
