import { InvalidArgumentError } from '../../../core/errors.js';
import { formatCidr, parsePrefix, type Cidr } from '../../../core/ip.js';
import { familyOf, routedFamilies, type DriverOptions, type RoutedFamily } from '../driver.js';
import type { DefinedSet, Policy, PolicyAssignment, PolicyPrefix } from './api.js';

/**
 * What gobgpd may send its peers, as Twill's own speaker does (builtin-driver.ts
 * speakerPeerConfig): exactly the host's own subnet, or, on a route reflector, every subnet inside
 * the cluster network. gobgpd with no policy re-advertises whatever BGP's rules allow (routes
 * from an eBGP ToR to iBGP mesh peers, a mesh peer's to the ToR); this global export policy
 * rejects all but these:
 *
 *   defined set "twill-export" (PREFIX): the announced prefixes, each exactly (24..24), or the
 *     cluster network with every length up to /32 on a reflector
 *   policy "twill-export": one statement, the set (and, but on a reflector, only paths this host
 *     originated) -> ACCEPT
 *   assignment "global" EXPORT: [twill-export], default REJECT
 *
 * The set follows the announcement (driver.ts): a new prefix goes in before its AddPath, an old
 * one out after its DeletePath. gobgpd applies the policy to a path when it changes, never again
 * when the policy does: a path of ours it once rejected would stay unsent, and it withdraws a
 * path it sent, when another takes its place, only if the policy still passes the old one.
 * For the same reason what a gobgpd sent before the policy came (or changed: a host that stopped
 * reflecting) stays sent until those paths change or the session restarts (3.x's soft reset out
 * only sends again what passes; it withdraws nothing).
 */
export const EXPORT_NAME = 'twill-export';
/**
 * gobgpd's PREFIX sets hold one family each ("multiple families", NewPrefixSetFromApiStruct), so
 * the IPv6 prefixes have a set of their own, and the policy a statement for it.
 */
export const EXPORT_NAME_V6 = 'twill-export-v6';

/** The export set (and statement) of a family. */
export function exportSetName(family: RoutedFamily): string {
  return family === 'ipv4' ? EXPORT_NAME : EXPORT_NAME_V6;
}

/** The entries of one family's set, of exportPrefixes()' output. */
export function prefixesOfFamily(prefixes: readonly PolicyPrefix[], family: RoutedFamily): PolicyPrefix[] {
  return prefixes.filter((p) => familyOf(p.ip_prefix) === family);
}

export type ExportOptions = Pick<DriverOptions, 'reflector' | 'clusterNetwork'> & Partial<Pick<DriverOptions, 'families' | 'clusterNetworkV6'>>;

/**
 * The set's entries for the host's own prefixes (canonical text, "10.244.1.0/24",
 * "fd10:0:0:1::/64"); on a reflector the cluster networks of the driver's families. One
 * PREFIX set holds both families: gobgpd matches each path against the entries of its own.
 */
export function exportPrefixes(opts: ExportOptions, own: Iterable<string>): PolicyPrefix[] {
  const families = routedFamilies(opts);
  if (opts.reflector) {
    const networks: [RoutedFamily, string | undefined][] = [['ipv4', opts.clusterNetwork], ['ipv6', opts.clusterNetworkV6]];
    return networks.filter(([f, n]) => families.includes(f) && (n !== undefined || f === 'ipv4')).map(([, n]) => {
      const cluster = routedPrefix(n ?? '', 'cluster network', families);
      return { ip_prefix: formatCidr(cluster), mask_length_min: cluster.prefixLength, mask_length_max: cluster.address.family === 4 ? 32 : 128 };
    });
  }
  const out = new Map<string, PolicyPrefix>();
  for (const text of own) {
    const cidr = routedPrefix(text, 'announced prefix', families);
    const p = { ip_prefix: formatCidr(cidr), mask_length_min: cidr.prefixLength, mask_length_max: cidr.prefixLength };
    out.set(prefixKey(p), p);
  }
  return [...out.values()];
}

export function exportSet(prefixes: readonly PolicyPrefix[], name = EXPORT_NAME): DefinedSet {
  return { defined_type: 'PREFIX', name, prefixes };
}

/**
 * The policy: paths inside the set, ACCEPT. A host that reflects nothing sends only what it
 * originated: a peer's path for its own prefix (a stale one, or another host's before the lease
 * moved) is never passed on, and the withdrawal of ours still goes out when it ends.
 */
export function exportPolicy(opts: Pick<ExportOptions, 'reflector' | 'families'>): Policy {
  return {
    name: EXPORT_NAME,
    // One statement per family's set: a path that is in neither is left to the default (REJECT).
    statements: routedFamilies(opts).map((family) => ({
      name: exportSetName(family),
      conditions: {
        prefix_set: { type: 'ANY' as const, name: exportSetName(family) },
        ...(!opts.reflector && { route_type: 'ROUTE_TYPE_LOCAL' as const }),
      },
      actions: { route_action: 'ACCEPT' as const },
    })),
  };
}

/** The global export assignment: the policy, and REJECT for everything it did not accept. */
export function exportAssignment(): PolicyAssignment {
  return { name: 'global', direction: 'EXPORT', policies: [{ name: EXPORT_NAME }], default_action: 'REJECT' };
}

/**
 * What a policy is compared by: the fields exportPolicy() sets, read the same way from its output
 * and from ListPolicy (which fills in every default), so an adopted gobgpd keeps one that matches.
 */
export function policyKey(p: Policy): string {
  return JSON.stringify([p.name, (p.statements ?? []).map((s) => [
    s.name, s.conditions?.prefix_set?.type ?? 'ANY', s.conditions?.prefix_set?.name ?? '',
    s.conditions?.route_type ?? 'ROUTE_TYPE_NONE', s.actions?.route_action ?? 'NONE',
  ])]);
}

export function prefixKey(p: PolicyPrefix): string {
  return `${p.ip_prefix} ${p.mask_length_min}..${p.mask_length_max}`;
}

export interface SetPlan {
  /** AddDefinedSet these (first: the set may only grow until the routes changed). */
  readonly add: PolicyPrefix[];
  /** Then DeleteDefinedSet these. */
  readonly remove: PolicyPrefix[];
}

/** The calls that turn the set gobgpd has (duplicates and all) into `wanted`. */
export function planSet(current: readonly PolicyPrefix[], wanted: readonly PolicyPrefix[]): SetPlan {
  const have = new Map(current.map((p) => [prefixKey(p), p]));
  const want = new Map(wanted.map((p) => [prefixKey(p), p]));
  return {
    add: [...want].filter(([k]) => !have.has(k)).map(([, p]) => p),
    remove: [...have].filter(([k]) => !want.has(k)).map(([, p]) => p),
  };
}

function routedPrefix(text: string, what: string, families: readonly RoutedFamily[]): Cidr {
  const cidr = parsePrefix(text, what);
  if (!families.includes(familyOf(text))) {
    throw new InvalidArgumentError(what, text, `the gobgp driver routes ${families.map((f) => (f === 'ipv4' ? 'IPv4' : 'IPv6')).join(' and ')} unicast only`);
  }
  return cidr;
}
