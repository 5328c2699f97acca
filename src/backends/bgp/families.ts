import { InvalidArgumentError, TwillError } from '../../core/errors.js';
import type { BackendContext, HostBgpPeer, LocalLease } from '../backend.js';
import { TYPE, type BgpOptions } from './config.js';
import type { RoutedFamily } from './driver.js';

/**
 * Which address families the bgp backend routes, and over which transport its sessions run
 * (issue 17). One session per peer, whatever the families:
 *
 *   - IPv4 only: sessions over IPv4, IPv4 unicast.
 *   - Dual-stack: sessions over IPv4 (to the hosts' PublicIPs), negotiating IPv4 and IPv6 unicast
 *     (RFC 4760 multiprotocol capability). The IPv6 subnet travels in MP_REACH_NLRI (AFI 2, SAFI
 *     1) with the host's PublicIPv6 as next hop, so the IPv6 routes point at the IPv6 underlay
 *     while the session stays on IPv4: what Calico's BIRD does with an IPv4 transport. Half the
 *     sessions of a session per family, one router id, one place for MD5 and timers.
 *   - IPv6 only: sessions over IPv6 (to the hosts' PublicIPv6), IPv6 unicast; the speaker
 *     listens on the PublicIPv6. The BGP identifier is still a 32-bit value (RFC 6286) and the
 *     host has no IPv4 address to take it from: --bgp-router-id is required.
 */
export interface BgpUnderlay {
  /** The sessions' transport family. */
  readonly transport: 4 | 6;
  readonly families: readonly RoutedFamily[];
  /** This host's address on the transport (its PublicIP, or PublicIPv6 when IPv6-only): what peers connect to. */
  readonly self: string;
  /** Where sessions start from: the interface's address of the transport family. */
  readonly localAddress: string;
  /** The interface's IPv6 address, for a session to a peer at an IPv6 address over an IPv4 transport. */
  readonly localAddressV6: string | undefined;
  readonly routerId: string;
  /** Every address of this host: a learned path back to one of them is no route. */
  readonly ownAddresses: ReadonlySet<string>;
  /** What this host announces for `lease`: each family's subnet with that family's public address as next hop. */
  announcements(lease: LocalLease): { prefix: string; nextHop: string }[];
  /** The external peers a session can reach: of a family this host has an address of. */
  reachablePeers(peers: readonly HostBgpPeer[]): HostBgpPeer[];
}

export function bgpUnderlay(ctx: BackendContext, options: BgpOptions): BgpUnderlay {
  const ext = ctx.extIface;
  const v4 = ctx.clusterNetwork !== undefined;
  const v6 = ctx.clusterNetworkV6 !== undefined;
  const families: RoutedFamily[] = [...(v4 ? ['ipv4' as const] : []), ...(v6 ? ['ipv6' as const] : [])];
  if (families.length === 0) throw new TwillError('EBGP_FAMILY', `the ${TYPE} backend needs a cluster network (Network or IPv6Network)`);
  if (v4 && (ext.address === undefined || ext.publicIp === undefined)) {
    throw new TwillError('EBGP_FAMILY', `the ${TYPE} backend needs an IPv4 address on ${ext.name}: an IPv4 cluster network is routed via the hosts' PublicIPs`);
  }
  if (v6 && (ext.ipv6Address === undefined || ext.publicIpv6 === undefined)) {
    throw new TwillError('EBGP_FAMILY', `the ${TYPE} backend needs a global IPv6 address on ${ext.name} (or --public-ipv6): IPv6 subnets are announced with the PublicIPv6 as next hop`);
  }
  const transport = v4 ? 4 : 6;
  let routerId = ctx.bgp?.routerId;
  if (transport === 6) {
    if (routerId === undefined) {
      throw new InvalidArgumentError('--bgp-router-id', '(none)',
        `is required by the ${TYPE} backend in an IPv6-only cluster: the BGP identifier is a 32-bit value (RFC 4271 §4.2, RFC 6286) `
        + 'that defaults to the host\'s IPv4 address, and this host has none; give each host its own, e.g. --bgp-router-id 10.0.0.7');
    }
    if (options.routeReflectors.length > 0) {
      throw new InvalidArgumentError(`${TYPE} backend option RouteReflectors`, options.routeReflectors.join(','),
        'names hosts by their IPv4 PublicIP, and an IPv6-only cluster has none: use the full mesh (Mesh) or external route servers (Peers)');
    }
  }
  const self = transport === 4 ? ext.publicIp! : ext.publicIpv6!;
  const localAddress = transport === 4 ? ext.address! : ext.ipv6Address!;
  routerId ??= self;
  const ownAddresses = new Set([ext.address, ext.publicIp, ext.ipv6Address, ext.publicIpv6].filter((a): a is string => a !== undefined));
  const warned = new Set<string>();
  return {
    transport, families, self, localAddress, localAddressV6: ext.ipv6Address, routerId, ownAddresses,
    announcements(lease) {
      const out: { prefix: string; nextHop: string }[] = [];
      if (v4) {
        if (lease.subnet === undefined) throw new TwillError('EBGP_FAMILY', `the ${TYPE} backend routes IPv4, and this host's lease has no IPv4 subnet`);
        out.push({ prefix: lease.subnet, nextHop: lease.publicIp ?? ext.publicIp! });
      }
      if (v6) {
        if (lease.ipv6Subnet === undefined) throw new TwillError('EBGP_FAMILY', `the ${TYPE} backend routes IPv6, and this host's lease has no IPv6 subnet`);
        out.push({ prefix: lease.ipv6Subnet, nextHop: lease.publicIpv6 ?? ext.publicIpv6! });
      }
      return out;
    },
    reachablePeers(peers) {
      return peers.filter((p) => {
        const ok = p.address.includes(':') ? ext.ipv6Address !== undefined : ext.address !== undefined;
        if (!ok && !warned.has(p.address)) {
          warned.add(p.address);
          ctx.log.warn({ peer: p.address }, `bgp peer ${p.address} is not reachable: ${ext.name} has no address of its family; no session`);
        }
        return ok;
      });
    },
  };
}
