import { networkOf, parseCidr, prefixContains } from '../core/ip.js';
import { isNetlinkError, type NetlinkHandle } from '../netlink/index.js';

/**
 * Gives a tunnel device its lease subnet's network address as a host address, as flannel does for
 * its vxlan and ipip devices: 10.244.3.0/32 on twill.N or twill.ipip, fc00:0:0:3::/128 on
 * twill-v6.N (flannel's ConfigureIPv6). It is the
 * source of packets the node itself sends into the overlay, and the address peers keep a
 * neighbour entry for. Other addresses of the same family inside the cluster network (an older
 * lease's) are removed; anything else on the device (the kernel's fe80:: link-local) stays.
 * The IPv6 address skips duplicate address detection: no other node has it, and a "tentative"
 * address could not be used as a source for a second.
 */
export async function ensureDeviceAddress(nl: NetlinkHandle, index: number, subnet: string, clusterNetwork: string): Promise<string[]> {
  const net = networkOf(parseCidr(subnet, 'lease subnet'));
  const family = net.family;
  const want = `${net.text}/${family === 4 ? 32 : 128}`;
  const cluster = parseCidr(clusterNetwork, 'cluster network');
  const changes: string[] = [];
  let present = false;
  for (const a of await nl.listAddresses(index)) {
    if (a.family !== family) continue;
    if (a.cidr === want) { present = true; continue; }
    if (!prefixContains(cluster, parseCidr(a.cidr))) continue;
    await nl.deleteAddress(index, a.cidr);
    changes.push(`address -${a.cidr}`);
  }
  if (!present) {
    try {
      await nl.addAddress(index, want, { noDad: true });
      changes.push(`address +${want}`);
    } catch (err) {
      if (!isNetlinkError(err, 'EEXIST')) throw err;
    }
  }
  return changes;
}
