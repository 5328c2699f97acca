// Export policy: which best routes go to which peer, and with what attributes (RFC 4271 §9.1.3,
// §5.1). Two steps, split so the RIB can cache the expensive one:
//
//   exportAllowed()     per prefix: never back to the peer it came from, no iBGP-learned route to
//                       another iBGP peer (RFC 4271 §9.2) unless one of the two is a route
//                       reflector client (RFC 4456 §6), the peer's `announce` filter, the peer's
//                       negotiated families.
//   exportAttributes()  per (attributes, next hop, source, target): well-known communities,
//                       eBGP AS prepend and next hop self, LOCAL_PREF only to iBGP, MED rules,
//                       ORIGINATOR_ID and CLUSTER_LIST on a reflected route (RFC 4456 §8).
//                       Depends on no prefix, so one result serves a whole received UPDATE.

import { InvalidArgumentError } from '../../core/errors.js';
import { parseIp } from '../../core/ip.js';
import { strideOf } from '../prefix/prefix-list.js';
import type { Family, PathAttributes, Prefix, RoutePath, UnknownAttribute } from '../types.js';
import { asPathKey, prependAs } from './as-path.js';
import { PrefixSet, type PrefixRangeInput } from './prefix-set.js';

/** LOCAL_PREF sent to iBGP peers for local and eBGP-learned routes unless configured (RFC 4271 §5.1.5). */
export const DEFAULT_LOCAL_PREF = 100;

/** The next hop of a local advertisement that gives none: the session's own address. */
export const NEXT_HOP_SELF = '';

// RFC 1997 well-known communities.
export const NO_EXPORT = 0xffffff01;
export const NO_ADVERTISE = 0xffffff02;
export const NO_EXPORT_SUBCONFED = 0xffffff03;

// RFC 4271 §4.3 attribute flags.
const FLAG_OPTIONAL = 0x80;
const FLAG_TRANSITIVE = 0x40;
const FLAG_PARTIAL = 0x20;

export interface ExportPolicyConfig {
  /** Only prefixes matching one of these go to the peer. Absent: whatever the rules allow. */
  readonly announce?: readonly PrefixRangeInput[] | undefined;
  /** Next hop self per family, when the session's local address is of the other family or not the one to use. */
  readonly nextHopSelf?: { readonly ipv4?: string | undefined; readonly ipv6?: string | undefined } | undefined;
  /** LOCAL_PREF for iBGP peers. Default {@link DEFAULT_LOCAL_PREF}. */
  readonly localPref?: number | undefined;
}

/** A compiled, immutable export policy. One object may serve many peers. */
export class ExportPolicy {
  readonly announce: PrefixSet | undefined;
  readonly nextHopSelf: Readonly<Partial<Record<Family, string>>>;
  readonly localPref: number;

  constructor(config: ExportPolicyConfig = {}) {
    this.announce = config.announce ? new PrefixSet(config.announce, 'announced prefix range') : undefined;
    const self: Partial<Record<Family, string>> = {};
    for (const [family, text] of [['ipv4-unicast', config.nextHopSelf?.ipv4], ['ipv6-unicast', config.nextHopSelf?.ipv6]] as const) {
      if (text === undefined) continue;
      const ip = parseIp(text, `${family} next hop self`);
      if ((ip.family === 6) !== (family === 'ipv6-unicast')) throw new InvalidArgumentError(`${family} next hop self`, text, 'wrong address family');
      self[family] = ip.text;
    }
    this.nextHopSelf = Object.freeze(self);
    const lp = config.localPref ?? DEFAULT_LOCAL_PREF;
    if (!Number.isInteger(lp) || lp < 0 || lp > 0xffffffff) throw new InvalidArgumentError('local preference', lp, 'must be an integer 0..4294967295');
    this.localPref = lp;
  }
}

/** What export needs to know about where a route came from. */
export interface ExportSource {
  /** A local advertisement (setLocal), not a learned route. */
  readonly local: boolean;
  readonly ibgp: boolean;
  /** An iBGP peer we reflect routes for (RFC 4456 §6). Default false. */
  readonly routeReflectorClient?: boolean | undefined;
  /** The peer's BGP identifier: ORIGINATOR_ID of a route we reflect that has none (RFC 4456 §8). */
  readonly routerId?: string | undefined;
}

/** What export needs to know about the peer a route goes to. */
export interface ExportTarget extends ExportSource {
  readonly localAsn: number;
  /** Our cluster id (RFC 4456 §7), prepended to CLUSTER_LIST when we reflect a route. */
  readonly clusterId: string;
  /** The session's local address: next hop self unless the policy names one for the family. */
  readonly localAddress: string;
  readonly families: readonly Family[];
  readonly policy: ExportPolicy;
}

/** A route's outgoing form for one peer; many prefixes share one. */
export interface OutboundAttributes {
  /** Equal keys mean identical outgoing attributes and next hops (so one UPDATE can carry them). */
  readonly key: string;
  readonly family: Family;
  /** What to encode; `nextHop` is set for IPv4 only (IPv6 next hops travel in MP_REACH_NLRI). */
  readonly attributes: PathAttributes;
  readonly nextHops: readonly string[];
}

/** The per-prefix half of export: false when `prefix` must not go to `target` at all. */
export function exportAllowed(family: Family, prefix: Prefix, source: ExportSource, target: ExportTarget): boolean {
  const announce = target.policy.announce;
  return peerAllowed(family, source, target) && (announce === undefined || announce.matches(prefix));
}

/** exportAllowed() for the prefix at `words[at..]`/`len` (numeric, as the RIB keys it). */
export function exportAllowedKey(family: Family, words: Uint32Array, at: number, len: number, source: ExportSource, target: ExportTarget): boolean {
  const announce = target.policy.announce;
  return peerAllowed(family, source, target) && (announce === undefined || announce.matcher.matches(strideOf(family), words, at, len));
}

/** The rules of exportAllowed() that do not look at the prefix. */
function peerAllowed(family: Family, source: ExportSource, target: ExportTarget): boolean {
  // Never back to where it came from (the RIB passes the source peer's own object as target).
  if (source === target) return false;
  // RFC 4271 §9.2: iBGP-learned routes are not advertised to iBGP peers, except by a route
  // reflector (RFC 4456 §6): a client's routes go to every iBGP peer, a non-client's to the
  // clients only. Without clients nothing is reflected.
  if (source.ibgp && target.ibgp && !isReflected(source, target)) return false;
  return target.families.includes(family);
}

/** RFC 4456 §6: an iBGP-learned route going to an iBGP peer is reflected when either is a client. */
function isReflected(source: ExportSource, target: ExportSource): boolean {
  return (source.routeReflectorClient ?? false) || (target.routeReflectorClient ?? false);
}

/**
 * The prefix-independent half of export: the attributes `route` goes out with, or undefined when
 * its communities forbid it or there is no next hop to give.
 */
export function exportAttributes(route: RoutePath, source: ExportSource, target: ExportTarget): OutboundAttributes | undefined {
  const a = route.attributes;
  const communities = a.communities;
  if (communities !== undefined && communities.length > 0) {
    // RFC 1997: NO_ADVERTISE goes to no peer, NO_EXPORT(_SUBCONFED) to no external peer.
    if (communities.includes(NO_ADVERTISE)) return undefined;
    if (!target.ibgp && (communities.includes(NO_EXPORT) || communities.includes(NO_EXPORT_SUBCONFED))) return undefined;
  }
  const nextHop = chooseNextHop(route, source, target);
  if (nextHop === undefined) return undefined;
  // exportAllowed() let an iBGP-learned route to an iBGP peer through only when reflecting it.
  const reflected = source.ibgp && target.ibgp;
  const attributes = compact({
    origin: a.origin,
    // RFC 4271 §5.1.2: prepend our AS towards external peers only.
    asPath: target.ibgp ? a.asPath : prependAs(a.asPath, target.localAsn),
    nextHop: route.family === 'ipv4-unicast' ? nextHop : undefined,
    // RFC 4271 §5.1.4: a MED may be passed on inside the AS, never to another AS; to external
    // peers only our own (local) MED goes.
    med: target.ibgp || source.local ? a.med : undefined,
    // RFC 4271 §5.1.5: LOCAL_PREF goes to internal peers only. A local or eBGP-learned route's
    // received LOCAL_PREF (if any) was ignored, so ours applies; a reflected route keeps the one it
    // was ranked by (RFC 4456 §10).
    localPref: !target.ibgp ? undefined : reflected ? (a.localPref ?? DEFAULT_LOCAL_PREF) : target.policy.localPref,
    atomicAggregate: a.atomicAggregate,
    aggregator: a.aggregator,
    communities: a.communities,
    largeCommunities: a.largeCommunities,
    // RFC 4456 §8: a reflected route names the router that brought it into the AS (kept when set)
    // and the clusters it passed; neither leaves the AS nor goes on unreflected.
    originatorId: reflected ? (a.originatorId ?? source.routerId) : undefined,
    clusterList: reflected ? [target.clusterId, ...(a.clusterList ?? [])] : undefined,
    unknown: passOnUnknown(a.unknown),
  });
  return { key: attributesKey(route.family, attributes, nextHop), family: route.family, attributes, nextHops: [nextHop] };
}

/**
 * RFC 4271 §5.1.3: next hop self towards external peers; towards internal peers a learned route
 * keeps its next hop. A local advertisement uses the next hop it names, else self.
 */
function chooseNextHop(route: RoutePath, source: ExportSource, target: ExportTarget): string | undefined {
  if (source.local && route.nextHop !== NEXT_HOP_SELF) return route.nextHop;
  if (target.ibgp && !source.local) return route.nextHop;
  const configured = target.policy.nextHopSelf[route.family];
  if (configured !== undefined) return configured;
  // The session's address serves only its own family (an IPv4 session carrying IPv6 needs nextHopSelf.ipv6).
  const v6 = target.localAddress.includes(':');
  return v6 === (route.family === 'ipv6-unicast') && target.localAddress !== '' ? target.localAddress : undefined;
}

/** RFC 4271 §5: unrecognised optional transitive attributes pass on with Partial set; the rest are dropped. */
function passOnUnknown(unknown: readonly UnknownAttribute[] | undefined): readonly UnknownAttribute[] | undefined {
  if (unknown === undefined || unknown.length === 0) return undefined;
  const kept = unknown
    .filter((u) => (u.flags & FLAG_OPTIONAL) !== 0 && (u.flags & FLAG_TRANSITIVE) !== 0)
    .map((u) => ((u.flags & FLAG_PARTIAL) !== 0 ? u : { ...u, flags: u.flags | FLAG_PARTIAL }));
  return kept.length > 0 ? kept : undefined;
}

/** Drops undefined fields, so an outgoing attribute set compares equal to what the codec decodes. */
function compact(attributes: PathAttributes): PathAttributes {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v;
  return out as unknown as PathAttributes;
}

function attributesKey(family: Family, a: PathAttributes, nextHop: string): string {
  const unknown = a.unknown?.map((u) => `${u.flags}/${u.type}/${u.value.toString('hex')}`).join(',') ?? '';
  const large = a.largeCommunities?.map((c) => c.join(':')).join(',') ?? '';
  const aggregator = a.aggregator ? `${a.aggregator.asn}@${a.aggregator.address}` : '';
  return [
    family, nextHop, a.origin, asPathKey(a.asPath), a.med ?? '', a.localPref ?? '', a.atomicAggregate ? 1 : 0, aggregator,
    a.communities?.join(',') ?? '', large, a.originatorId ?? '', a.clusterList?.join(',') ?? '', unknown,
  ].join('|');
}
