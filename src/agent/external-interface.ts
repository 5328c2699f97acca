import { InvalidArgumentError } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import { ipv6EndpointProblem } from '../ipam/ipv6.js';
import type { ExternalInterface } from '../backends/backend.js';
import type { Address, Link, NetlinkHandle } from '../netlink/index.js';

/** The address part of "198.18.0.1/24" or "fd00::1/64". */
const hostOf = (a: Address): string => a.cidr.split('/')[0]!;

/**
 * Chooses the interface other hosts reach this one through, as flanneld does: the first
 * `--iface` entry (a name or one of the interface's addresses, of either family) that exists;
 * without --iface, the interface of the default route. Its first global IPv4 address is the
 * host's address, and --public-ip, when given, is what the lease publishes instead (NAT in front
 * of the host). Its first global IPv6 address (flannel pkg/ip/iface.go GetInterfaceIP6Addrs, but
 * never a link-local one: a tunnel endpoint must be reachable from other links) is what a
 * dual-stack lease publishes as PublicIPv6, unless --public-ipv6 says otherwise; whether one is
 * needed is known only with the network config (agent.ts).
 */
export async function findExternalInterface(nl: NetlinkHandle, ifaces: readonly string[], publicIp: string | undefined,
  publicIpv6?: string): Promise<ExternalInterface> {
  const links = await nl.listLinks();
  const addresses = await nl.listAddresses();
  const firstOf = (link: Link, family: 4 | 6): string | undefined => {
    const found = addresses.find((a) => a.index === link.index && a.family === family && (family === 4 || ipv6EndpointProblem(hostOf(a)) === undefined));
    return found && hostOf(found);
  };

  let chosen: Link | undefined;
  if (ifaces.length > 0) {
    for (const wanted of ifaces) {
      chosen = links.find((l) => l.name === wanted)
        ?? links.find((l) => addresses.some((a) => a.index === l.index && sameAddress(hostOf(a), wanted)));
      if (chosen) break;
    }
    if (!chosen) throw new InvalidArgumentError('--iface', ifaces.join(','), 'matches no interface (by name or address) on this host');
  } else {
    // The IPv4 default route's interface, else (an IPv6-only host) the IPv6 one's, as flanneld does.
    const defaultsOf = async (family: 4 | 6): Promise<number | undefined> => {
      const defaults = (await nl.listRoutes({ family })).filter((r) => (r.dst === '0.0.0.0/0' || r.dst === '::/0') && r.oif !== undefined);
      defaults.sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
      return defaults[0]?.oif;
    };
    const oif = (await defaultsOf(4)) ?? (await defaultsOf(6));
    chosen = links.find((l) => l.index === oif);
    if (!chosen) throw new InvalidArgumentError('--iface', '', 'not given and this host has no default route to pick an interface from');
  }
  // An interface without IPv4 serves an IPv6-only network only; config-check.ts refuses the others.
  const address = firstOf(chosen, 4);
  if (publicIp !== undefined && parseIp(publicIp, '--public-ip').family !== 4) {
    throw new InvalidArgumentError('--public-ip', publicIp, 'must be an IPv4 address');
  }
  const ipv6Address = firstOf(chosen, 6);
  if (address === undefined && ipv6Address === undefined && publicIpv6 === undefined) {
    throw new InvalidArgumentError('--iface', chosen.name, 'has neither an IPv4 nor a global IPv6 address');
  }
  const v6 = publicIpv6 ?? ipv6Address;
  const v4 = publicIp ?? address;
  return {
    name: chosen.name, index: chosen.index, mtu: chosen.mtu, address, publicIp: v4,
    ...(ipv6Address !== undefined && { ipv6Address }),
    ...(v6 !== undefined && { publicIpv6: v6 }),
  };
}

/** --iface's address against an interface's: IPv6 in any spelling. */
function sameAddress(a: string, b: string): boolean {
  try {
    return parseIp(a).text === parseIp(b).text;
  } catch {
    return false;
  }
}
