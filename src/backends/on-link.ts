import { parseCidr, prefixContains } from '../core/ip.js';
import type { NetlinkHandle } from '../netlink/index.js';

/**
 * "Is this IPv4 address on-link": inside a connected subnet of the external interface (one of its
 * addresses' prefixes, a /32 excepted). flannel asks `ip route get` instead, which also says yes
 * for a peer behind a more specific on-link route; the connected subnets are the L2 segment
 * proper, which is what a route via the host (host-gw, DirectRouting) needs.
 */
export function onLinkMatcher(interfaceCidrs: readonly string[]): (ip: string) => boolean {
  const nets = interfaceCidrs
    .map((c) => parseCidr(c, 'interface address'))
    .filter((c) => c.address.family === 4 && c.prefixLength < 32);
  return (ip) => {
    const host = parseCidr(`${ip}/32`, 'IP address');
    return nets.some((n) => prefixContains(n, host));
  };
}

/** The IPv4 addresses with prefix on an interface ("198.18.0.1/24"): its connected networks, for onLinkMatcher. */
export async function connectedNetworks(nl: NetlinkHandle, index: number): Promise<string[]> {
  return (await nl.listAddresses(index)).filter((a) => a.family === 4).map((a) => a.cidr);
}
