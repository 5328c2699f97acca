import { InvalidArgumentError } from '../../../core/errors.js';
import { formatCidr, parseIp, parsePrefix } from '../../../core/ip.js';
import { familyOf, type LearnedPath, type RoutedFamily } from '../driver.js';
import { ANY, gobgpFamily, type Path, type PathAttribute } from './api.js';

/** ORIGIN IGP (RFC 4271 §5.1.1): the host's subnet is its own, not redistributed. */
const ORIGIN_IGP = 0;
/** LOCAL_PREF when a path has none: eBGP paths never carry it (RFC 4271 §5.1.5). */
const DEFAULT_LOCAL_PREF = 100;
/** What gobgpd calls a local path's neighbor: Go's text of no address. */
const NO_NEIGHBOR = '<nil>';

/** A route this host announces: canonical prefix and next hop, of one family. */
export interface OwnRoute {
  readonly prefix: string;
  readonly nextHop: string;
}

const FAMILY_NAMES: Readonly<Record<RoutedFamily, string>> = { ipv4: 'IPv4', ipv6: 'IPv6' };

/**
 * Checks and canonicalises a route to announce: of one of `families` (the driver's; IPv4 alone
 * unless the config enables IPv6), with a next hop of the prefix's own family (no RFC 8950
 * extended next hop).
 */
export function ownRoute(prefix: string, nextHop: string, families: readonly RoutedFamily[] = ['ipv4']): OwnRoute {
  const cidr = parsePrefix(prefix, 'announced prefix');
  const hop = parseIp(nextHop, 'next hop');
  const family: RoutedFamily = cidr.address.family === 4 ? 'ipv4' : 'ipv6';
  const names = families.map((f) => FAMILY_NAMES[f]).join(' and ');
  if (!families.includes(family)) {
    throw new InvalidArgumentError('announced route', `${prefix} via ${nextHop}`, `the gobgp driver announces ${names} unicast only`);
  }
  if (hop.family !== cidr.address.family) {
    throw new InvalidArgumentError('announced route', `${prefix} via ${nextHop}`, `the next hop must be of the prefix's family (${names} unicast only, each with a next hop of its own family)`);
  }
  return { prefix: formatCidr(cidr), nextHop: hop.text };
}

/**
 * An own route as AddPath and DeletePath take it: the prefix with ORIGIN IGP and NEXT_HOP
 * (RFC 4271 §5.1.3); gobgpd adds AS_PATH and LOCAL_PREF per peer on export. DeletePath matches
 * on the prefix but refuses a path without a next hop, so both get the whole path.
 */
export function ownPath(route: OwnRoute): Path {
  const slash = route.prefix.indexOf('/');
  const family = gobgpFamily(familyOf(route.prefix));
  const nlri = { '@type': ANY.ipAddressPrefix, prefix: route.prefix.slice(0, slash), prefix_len: Number(route.prefix.slice(slash + 1)) } as const;
  return {
    family,
    nlri,
    pattrs: [
      { '@type': ANY.origin, origin: ORIGIN_IGP },
      // IPv6 (RFC 4760): the next hop travels in MP_REACH_NLRI, as gobgp's CLI sends it.
      familyOf(route.prefix) === 'ipv4'
        ? { '@type': ANY.nextHop, next_hop: route.nextHop }
        : { '@type': ANY.mpReach, family, next_hops: [route.nextHop], nlris: [nlri] },
    ],
  };
}

/** "10.244.3.0/24" for a path of an IP unicast family; undefined for any other NLRI. */
export function prefixOf(path: Path): string | undefined {
  const nlri = path.nlri;
  if (nlri?.['@type'] !== ANY.ipAddressPrefix) return undefined;
  return `${nlri.prefix}/${nlri.prefix_len}`;
}

/** The peer a path was learned from, or undefined for a path of this host's own (AddPath). */
export function neighborOf(path: Path): string | undefined {
  const n = path.neighbor_ip;
  return n === undefined || n === '' || n === NO_NEIGHBOR ? undefined : n;
}

/**
 * A learned path as the backend compares and installs it (driver.ts LearnedPath); undefined
 * when it is not IPv4 or IPv6 unicast (its family that of its prefix) or has no next hop. An
 * IPv6 path's next hop is MP_REACH_NLRI's first, the global one (RFC 2545 §3). `localAsn` tells
 * eBGP from iBGP: gobgpd's is_from_external means "from outside BGP", not eBGP, so the peer's AS decides.
 */
export function learnedPath(path: Path, localAsn: number): LearnedPath | undefined {
  const prefix = prefixOf(path);
  if (prefix === undefined || path.family?.afi !== gobgpFamily(familyOf(prefix)).afi || path.family.safi !== 'SAFI_UNICAST') return undefined;
  let nextHop = '';
  let asPathLength = 0;
  let localPref = DEFAULT_LOCAL_PREF;
  let med = 0;
  let origin = ORIGIN_IGP;
  for (const a of path.pattrs ?? []) {
    switch (a['@type']) {
      case ANY.origin: origin = a.origin; break;
      case ANY.asPath: asPathLength = asPathLengthOf(a); break;
      case ANY.nextHop: nextHop = a.next_hop; break;
      // RFC 4760: an MP_REACH next hop when the NEXT_HOP attribute is absent (extended next hop).
      case ANY.mpReach: if (nextHop === '') nextHop = a.next_hops[0] ?? ''; break;
      case ANY.med: med = a.med; break;
      case ANY.localPref: localPref = a.local_pref; break;
      default: break;
    }
  }
  if (nextHop === '') return undefined;
  return { prefix, nextHop, asPathLength, localPref, med, origin, ebgp: (path.source_asn ?? 0) !== localAsn };
}

/** One of this host's own paths found in gobgpd's global RIB (a gobgpd adopted after a restart of the agent). */
export function ownRouteOf(path: Path): OwnRoute | undefined {
  if (neighborOf(path) !== undefined) return undefined;
  const l = learnedPath(path, 0);
  return l && { prefix: l.prefix, nextHop: l.nextHop };
}

/**
 * RFC 4271 §9.1.2.2 a: each AS of an AS_SEQUENCE counts, an AS_SET counts one; confederation
 * segments do not count (RFC 5065 §5.3). The same rule as builtin-driver.ts.
 */
function asPathLengthOf(a: Extract<PathAttribute, { '@type': typeof ANY.asPath }>): number {
  let n = 0;
  for (const seg of a.segments) {
    if (seg.type === 'AS_SEQUENCE') n += seg.numbers.length;
    else if (seg.type === 'AS_SET') n += 1;
  }
  return n;
}
