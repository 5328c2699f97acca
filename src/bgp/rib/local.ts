// Local advertisements: the routes this node originates (its pod block), set declaratively as a
// whole list (MetalLB's Session.Set, code-style-anchors §2.5). Checked in full before anything
// changes, so a bad list leaves the RIB as it was.

import { InvalidArgumentError } from '../../core/errors.js';
import { formatCidr, parseIp, parsePrefix } from '../../core/ip.js';
import { NEXT_HOP_SELF } from '../policy/export-policy.js';
import { familyOf } from '../policy/prefix-set.js';
import { Origin, type Family, type LargeCommunity, type PathAttributes, type Prefix, type Route } from '../types.js';

export interface LocalAdvertisement {
  /** Optional; when given it must match the prefix. */
  readonly family?: Family | undefined;
  readonly prefix: Prefix;
  /** A next hop other than the session's own address (third-party next hop). Default: self. */
  readonly nextHop?: string | undefined;
  readonly communities?: readonly number[] | undefined;
  readonly largeCommunities?: readonly LargeCommunity[] | undefined;
  /** Sent to eBGP and iBGP peers alike (it is ours, RFC 4271 §5.1.4). */
  readonly med?: number | undefined;
}

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** Checks one advertisement and turns it into the Route the RIB holds. Attributes objects are shared via `shared`. */
function toRoute(adv: LocalAdvertisement, shared: Map<string, PathAttributes>): Route {
  const what = 'local advertisement';
  const cidr = parsePrefix(adv.prefix, `${what} prefix`);
  const prefix = formatCidr(cidr);
  // Keys are compared as text: only the canonical spelling finds the same route again.
  if (prefix !== adv.prefix) throw new InvalidArgumentError(`${what} prefix`, adv.prefix, `not canonical; write ${prefix}`);
  const family = familyOf(prefix);
  if (adv.family !== undefined && adv.family !== family) throw new InvalidArgumentError(`${what} family`, adv.family, `${prefix} is ${family}`);
  let nextHop = NEXT_HOP_SELF;
  if (adv.nextHop !== undefined) {
    const ip = parseIp(adv.nextHop, `${what} next hop`);
    if ((ip.family === 6) !== (family === 'ipv6-unicast')) throw new InvalidArgumentError(`${what} next hop`, adv.nextHop, `not an address of the ${family} family`);
    nextHop = ip.text;
  }
  if (adv.med !== undefined && !isUint32(adv.med)) throw new InvalidArgumentError(`${what} MED`, adv.med, 'must be an integer 0..4294967295');
  for (const c of adv.communities ?? []) if (!isUint32(c)) throw new InvalidArgumentError(`${what} community`, c, 'must be a 32-bit unsigned integer');
  for (const lc of adv.largeCommunities ?? []) {
    if (lc.length !== 3 || !lc.every(isUint32)) throw new InvalidArgumentError(`${what} large community`, lc, 'must be three 32-bit unsigned integers');
  }
  const key = JSON.stringify([adv.med, adv.communities, adv.largeCommunities]);
  let attributes = shared.get(key);
  if (attributes === undefined) {
    const a: { -readonly [K in keyof PathAttributes]: PathAttributes[K] } = { origin: Origin.IGP, asPath: [] };
    if (adv.med !== undefined) a.med = adv.med;
    if (adv.communities?.length) a.communities = [...adv.communities];
    if (adv.largeCommunities?.length) a.largeCommunities = adv.largeCommunities.map((lc) => [lc[0], lc[1], lc[2]] as const);
    attributes = Object.freeze(a);
    shared.set(key, attributes);
  }
  return { family, prefix, nextHop, attributes };
}

/** Checks a whole list: every entry valid, no prefix twice. Throws InvalidArgumentError on the first problem. */
export function localRoutes(advertisements: readonly LocalAdvertisement[]): Route[] {
  const shared = new Map<string, PathAttributes>();
  const seen = new Set<Prefix>();
  return advertisements.map((adv) => {
    const route = toRoute(adv, shared);
    if (seen.has(route.prefix)) throw new InvalidArgumentError('local advertisement prefix', route.prefix, 'is listed twice');
    seen.add(route.prefix);
    return route;
  });
}
