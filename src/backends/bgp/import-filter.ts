import { formatCidr, parseCidr, parsePrefix, prefixContains, type Cidr } from '../../core/ip.js';

/**
 * Which prefixes learned over BGP the bgp backend may install (issue 16, item 3). The speaker's
 * import policy already drops what no host may announce (bgp/policy); this is the backend's own
 * rule on top: the lease set in etcd says which subnets exist, so a router, misconfigured or
 * hostile, cannot steer pod traffic to a prefix no host leased, to the outside world, or away
 * from this host's own pods.
 */
export type ImportRefusal = 'malformed' | 'not_ipv4' | 'default_route' | 'outside_cluster' | 'own_subnet' | 'no_lease';

export interface ImportFilterInput {
  readonly clusterNetwork: string;
  /** This host's leased subnet: never routed elsewhere. */
  readonly ownSubnet: string;
  /** The subnets of the other hosts' current leases. */
  readonly leasedSubnets: Iterable<string>;
}

export type ImportDecision = { readonly ok: true; readonly prefix: string } | { readonly ok: false; readonly reason: ImportRefusal; readonly detail: string };

const MEMO_MAX = 200_000;

/** A reusable filter for one lease set: build it when the leases change, ask it per learned prefix. */
export function importFilter(input: ImportFilterInput): (prefix: string) => ImportDecision {
  const cluster = parseCidr(input.clusterNetwork, 'cluster network');
  const own = formatCidr(parsePrefix(input.ownSubnet, 'own subnet'));
  const leased = new Set<string>();
  for (const s of input.leasedSubnets) {
    try {
      leased.add(formatCidr(parsePrefix(s, 'leased subnet')));
    } catch {
      // The agent screens leases before they get here; a broken one simply leases nothing.
    }
  }
  // The same prefixes are asked again at every plan (10,000 of them after a full table): each is
  // parsed once per lease set.
  const decided = new Map<string, ImportDecision>();
  return (text) => {
    let decision = decided.get(text);
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
    if (prefix.address.family !== 4) return no('not_ipv4', `${canonical} is not IPv4 (the cluster network is)`);
    if (prefix.prefixLength === 0) return no('default_route', 'a default route would send all of this host\'s traffic to the peer');
    if (!prefixContains(cluster, prefix)) return no('outside_cluster', `${canonical} is outside the cluster network ${formatCidr(cluster)}`);
    if (canonical === own) return no('own_subnet', `${canonical} is this host's own subnet`);
    if (!leased.has(canonical)) return no('no_lease', `no host holds a lease for ${canonical}`);
    return { ok: true, prefix: canonical };
  }
}
