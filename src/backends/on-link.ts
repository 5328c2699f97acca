import { parseCidr, prefixContains } from '../core/ip.js';
import type { NetlinkHandle } from '../netlink/index.js';

/**
 * "Is this address on-link": inside a connected subnet of the external interface (one of its
 * addresses' prefixes of the same family, a /32 or /128 excepted). flannel asks `ip route get` instead, which also says yes
 * for a peer behind a more specific on-link route; the connected subnets are the L2 segment
 * proper, which is what a route via the host (host-gw, DirectRouting) needs.
 */
export function onLinkMatcher(interfaceCidrs: readonly string[]): (ip: string) => boolean {
  const nets = interfaceCidrs
    .map((c) => parseCidr(c, 'interface address'))
    .filter((c) => c.prefixLength < (c.address.family === 4 ? 32 : 128));
  return (ip) => {
    const host = parseCidr(`${ip}/${ip.includes(':') ? 128 : 32}`, 'IP address');
    return nets.some((n) => n.address.family === host.address.family && prefixContains(n, host));
  };
}

/** The addresses with prefix on an interface ("198.18.0.1/24", "fd00:18::1/64"): its connected networks, for onLinkMatcher. */
export async function connectedNetworks(nl: NetlinkHandle, index: number): Promise<string[]> {
  return (await nl.listAddresses(index)).map((a) => a.cidr);
}
