import { InvalidArgumentError } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import type { ExternalInterface } from '../backends/backend.js';
import type { Link, NetlinkHandle } from '../netlink/index.js';

/**
 * Chooses the interface other hosts reach this one through, as flanneld does: the first
 * `--iface` entry (a name or one of the interface's addresses) that exists; without --iface, the
 * interface of the default route. Its first global IPv4 address is the host's address, and
 * --public-ip, when given, is what the lease publishes instead (NAT in front of the host).
 */
export async function findExternalInterface(nl: NetlinkHandle, ifaces: readonly string[], publicIp: string | undefined): Promise<ExternalInterface> {
  const links = await nl.listLinks();
  const addresses = (await nl.listAddresses()).filter((a) => a.family === 4);
  const ipv4Of = (link: Link): string | undefined => addresses.find((a) => a.index === link.index)?.cidr.split('/')[0];

  let chosen: Link | undefined;
  if (ifaces.length > 0) {
    for (const wanted of ifaces) {
      chosen = links.find((l) => l.name === wanted)
        ?? links.find((l) => addresses.some((a) => a.index === l.index && a.cidr.split('/')[0] === wanted));
      if (chosen) break;
    }
    if (!chosen) throw new InvalidArgumentError('--iface', ifaces.join(','), 'matches no interface (by name or address) on this host');
  } else {
    const defaults = (await nl.listRoutes({ family: 4 })).filter((r) => r.dst === '0.0.0.0/0' && r.oif !== undefined);
    defaults.sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
    chosen = links.find((l) => l.index === defaults[0]?.oif);
    if (!chosen) throw new InvalidArgumentError('--iface', '', 'not given and this host has no IPv4 default route to pick an interface from');
  }
  const address = ipv4Of(chosen);
  if (address === undefined) throw new InvalidArgumentError('--iface', chosen.name, 'has no IPv4 address');
  if (publicIp !== undefined && parseIp(publicIp, '--public-ip').family !== 4) {
    throw new InvalidArgumentError('--public-ip', publicIp, 'must be an IPv4 address');
  }
  return { name: chosen.name, index: chosen.index, mtu: chosen.mtu, address, publicIp: publicIp ?? address };
}
