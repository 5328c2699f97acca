import { parseCidr, prefixContains, type Cidr } from '../core/ip.js';
import { RTPROT_TWILL, type Address, type Route } from '../netlink/index.js';

/**
 * Why the cluster Network cannot be used on this host, or undefined when it can: it must not
 * contain the external interface's own addresses, the destinations of its routes, or their
 * gateways. Pod routes inside the Network are installed over whatever is there; if the underlay
 * lives inside it, a lease for that part replaces the connected route and the host loses the
 * network its tunnels and etcd run over, for good. Twill's own routes (protocol 84) are the
 * exception: host-gw installs its pod routes on the external interface. The same holds for
 * IPv6Network and the IPv6 underlay (`field` names the config field); other families are ignored.
 */
export function underlayConflict(network: string, extName: string, addresses: readonly Address[], routes: readonly Route[],
  field: 'Network' | 'IPv6Network' = 'Network'): string | undefined {
  const outer = parseCidr(network, 'cluster network');
  const family = outer.address.family;
  const hostLength = family === 4 ? 32 : 128;
  const inside = (cidr: Cidr): boolean => prefixContains(outer, cidr);
  for (const a of addresses) {
    if (a.family !== family) continue;
    const address = parseCidr(a.cidr);
    if (inside({ address: address.address, prefixLength: hostLength })) {
      return `the cluster network ${network} contains ${a.cidr}, an address of the external interface ${extName}: change the network config's ${field}, or choose another --iface`;
    }
  }
  for (const r of routes) {
    if (r.family !== family || r.protocol === RTPROT_TWILL || parseCidr(r.dst).prefixLength === 0) continue;
    if (inside(parseCidr(r.dst))) {
      return `the cluster network ${network} contains ${r.dst}, a route of the external interface ${extName}: pod routes would replace it`;
    }
    if (r.gateway !== undefined && inside(parseCidr(`${r.gateway}/${hostLength}`))) {
      return `the cluster network ${network} contains ${r.gateway}, the gateway of the route to ${r.dst} on the external interface ${extName}`;
    }
  }
  return undefined;
}
