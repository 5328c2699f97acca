import { RTPROT_TWILL, type Netlink } from '../src/netlink/index.js';
import { waitFor } from '../test/helpers/wait.js';

/**
 * How many of Twill's entries of one family a namespace holds through `device`: [routes of
 * protocol 84, permanent neighbours, FDB entries with a destination]; none without the device.
 */
export async function countEntries(nl: Netlink, device: string, family: 4 | 6 = 4): Promise<[number, number, number]> {
  const link = await nl.getLink(device);
  if (!link) return [0, 0, 0];
  const [routes, neigh, fdb] = await Promise.all([
    nl.listRoutes({ family, protocol: RTPROT_TWILL }), nl.listNeighbours(link.index), nl.listFdb(link.index),
  ]);
  return [routes.length, neigh.filter((x) => x.permanent).length, fdb.filter((x) => x.dst !== undefined).length];
}

/**
 * Waits until at most `left` of each kind of Twill's entries remain (the leases that stay in
 * etcd): countEntries for each device and its family, and Twill's single nexthops of that family.
 * A burst round ends only then: a removal still in progress (routes go first; nexthops,
 * neighbours and FDB entries after) would hand the next round entries it did not write.
 */
export async function waitEntriesGone(nl: Netlink, devices: readonly { device: string; family: 4 | 6 }[], left: number): Promise<void> {
  const most = async (): Promise<number> => {
    const nexthops = (await nl.listNexthops()).filter((n) => n.protocol === RTPROT_TWILL && !n.group);
    const counts = await Promise.all(devices.map(async ({ device, family }) => [...await countEntries(nl, device, family), nexthops.filter((n) => n.family === family).length]));
    return Math.max(0, ...counts.flat());
  };
  await waitFor(async () => (await most()) <= left, { timeoutMs: 120_000, intervalMs: 50, what: 'the burst\'s entries gone' });
}
