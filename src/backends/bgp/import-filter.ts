import { formatCidr, parseCidr, parsePrefix, plainIpv4Contains, plainIpv4IsNetwork, prefixContains, readPlainIpv4Prefix, type Cidr } from '../../core/ip.js';

/**
 * Which prefixes learned over BGP the bgp backend may install (issue 16, item 3). The speaker's
 * import policy already drops what no host may announce (bgp/policy); this is the backend's own
 * rule on top: the lease set in etcd says which subnets exist, so a router, misconfigured or
 * hostile, cannot steer pod traffic to a prefix no host leased, to the outside world, or away
 * from this host's own pods.
 */
export type ImportRefusal = 'malformed' | 'not_ipv4' | 'not_ipv6' | 'default_route' | 'outside_cluster' | 'own_subnet' | 'no_lease';

/**
 * The same rules for both families (issue 17): each family's prefixes must lie inside that
 * family's cluster network, and a prefix of a family the config does not enable is refused
 * (not_ipv4: an IPv6 prefix in an IPv4-only cluster; not_ipv6: an IPv4 one in an IPv6-only cluster).
 */
export interface ImportFilterInput {
  /** The IPv4 cluster network; undefined in an IPv6-only cluster. */
  readonly clusterNetwork: string | undefined;
  /** This host's leased IPv4 subnet: never routed elsewhere. */
  readonly ownSubnet: string | undefined;
  /** The IPv6 cluster network, when the config enables IPv6. */
  readonly clusterNetworkV6?: string | undefined;
  /** This host's leased IPv6 subnet. */
  readonly ownSubnetV6?: string | undefined;
  /** The subnets of the other hosts' current leases, both families. */
  readonly leasedSubnets: Iterable<string>;
}

export type ImportDecision = { readonly ok: true; readonly prefix: string } | { readonly ok: false; readonly reason: ImportRefusal; readonly detail: string };

const MEMO_MAX = 200_000;

/** A reusable filter for one lease set: build it when the leases change, ask it per learned prefix. */
export function importFilter(input: ImportFilterInput): (prefix: string) => ImportDecision {
  const clusters = {
    4: input.clusterNetwork === undefined ? undefined : parseCidr(input.clusterNetwork, 'cluster network'),
    6: input.clusterNetworkV6 === undefined ? undefined : parseCidr(input.clusterNetworkV6, 'IPv6 cluster network'),
  };
  const own = new Set([input.ownSubnet, input.ownSubnetV6].flatMap((s) => (s === undefined ? [] : [formatCidr(parsePrefix(s, 'own subnet'))])));
  // -1 (no fast path) in an IPv6-only cluster, or for a cluster network in another form.
  const cluster4 = input.clusterNetwork === undefined ? -1 : readPlainIpv4Prefix(input.clusterNetwork);
  const leased = new Set<string>();
  /**
   * The decision for each prefix that may be installed, by its canonical text, made once per
   * lease set: a table is prefixes in canonical text, as the speakers format them, so a prefix
   * that may be installed costs one lookup, with no parsing and no allocation (the filter is
   * asked twice per learned prefix: when it comes, and when its route is planned).
   */
  const accepted = new Map<string, ImportDecision>();
  for (const s of input.leasedSubnets) {
    const plain = readPlainIpv4Prefix(s);
    if (plain >= 0 && plainIpv4IsNetwork(plain)) {
      leased.add(s); // canonical already: what formatCidr would make of it
      if (plain > 0 && cluster4 >= 0 && plainIpv4Contains(cluster4, plain)) accepted.set(s, { ok: true, prefix: s });
      continue;
    }
    try {
      leased.add(formatCidr(parsePrefix(s, 'leased subnet')));
    } catch {
      // The agent screens leases before they get here; a broken one simply leases nothing.
    }
  }
  for (const subnet of own) accepted.delete(subnet);
  // The same prefixes are asked again at every plan (10,000 of them after a full table): each is
  // parsed once per lease set.
  const decided = new Map<string, ImportDecision>();
  return (text) => {
    let decision = accepted.get(text) ?? decided.get(text);
    if (decision === undefined) {
      decision = decide(text);
      // Bounded: peers are held to their max-prefix, but a lease set may live long.
      if (decided.size >= MEMO_MAX) decided.clear();
      decided.set(text, decision);
    }
    return decision;
  };

  function decide(text: string): ImportDecision {
    let prefix: Cidr;
    try {
      prefix = parsePrefix(text, 'learned prefix');
    } catch (err) {
      return { ok: false, reason: 'malformed', detail: (err as Error).message };
    }
    const canonical = formatCidr(prefix);
    const no = (reason: ImportRefusal, detail: string): ImportDecision => ({ ok: false, reason, detail });
    const cluster = clusters[prefix.address.family];
    if (cluster === undefined) {
      return prefix.address.family === 6
        ? no('not_ipv4', `${canonical} is not IPv4 (the cluster network is)`)
        : no('not_ipv6', `${canonical} is not IPv6 (the cluster network is)`);
    }
    if (prefix.prefixLength === 0) return no('default_route', 'a default route would send all of this host\'s traffic to the peer');
    if (!prefixContains(cluster, prefix)) return no('outside_cluster', `${canonical} is outside the cluster network ${formatCidr(cluster)}`);
    if (own.has(canonical)) return no('own_subnet', `${canonical} is this host's own subnet`);
    if (!leased.has(canonical)) return no('no_lease', `no host holds a lease for ${canonical}`);
    return { ok: true, prefix: canonical };
  }
}
