import { networkOf, parseCidr, prefixContains } from '../core/ip.js';
import { ensureAddress, type NetlinkHandle } from '../netlink/index.js';

/**
 * Gives a tunnel device the lease's network address as a /32 (10.244.3.0/32), as flannel does
 * for its vxlan and ipip devices: it is the source of packets the node itself sends into the
 * overlay (and, for vxlan, the address peers keep a neighbour entry for). Other addresses inside
 * the cluster network (an older lease's) are removed; anything else on the device is left alone.
 */
export async function ensureDeviceAddress(nl: NetlinkHandle, index: number, subnet: string, clusterNetwork: string): Promise<string[]> {
  const want = `${networkOf(parseCidr(subnet, 'lease subnet')).text}/32`;
  const cluster = parseCidr(clusterNetwork, 'cluster network');
  const changes: string[] = [];
  for (const a of await nl.listAddresses(index)) {
    if (a.family !== 4 || a.cidr === want || !prefixContains(cluster, parseCidr(a.cidr))) continue;
    await nl.deleteAddress(index, a.cidr);
    changes.push(`address -${a.cidr}`);
  }
  if (await ensureAddress(nl, index, want)) changes.push(`address +${want}`);
  return changes;
}
