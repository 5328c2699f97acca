import { RTPROT_TWILL, type Netlink } from '../src/netlink/index.js';
import { waitFor } from '../test/helpers/wait.js';

/**
 * The most of any one kind of Twill's entries left in a namespace: routes and nexthops of
 * protocol 84 per family, and per device its permanent neighbours and FDB entries with a
 * destination. A burst round ends only when all of them are gone: a removal still in progress
 * (routes go first; nexthops, neighbours and FDB entries after) would hand the next round
 * entries it did not write.
 */
export async function mostEntriesLeft(nl: Netlink, devices: readonly string[], families: readonly (4 | 6)[]): Promise<number> {
  const counts: number[] = [];
  const nexthops = (await nl.listNexthops()).filter((n) => n.protocol === RTPROT_TWILL && !n.group);
  for (const family of families) {
    counts.push((await nl.listRoutes({ family, protocol: RTPROT_TWILL })).length, nexthops.filter((n) => n.family === family).length);
  }
  for (const name of devices) {
    const dev = await nl.getLink(name);
    if (!dev) continue;
    counts.push((await nl.listNeighbours(dev.index)).filter((x) => x.permanent).length, (await nl.listFdb(dev.index)).filter((x) => x.dst !== undefined).length);
  }
  return Math.max(0, ...counts);
}

/** Waits until at most `left` entries of each kind remain (the leases that stay in etcd). */
export async function waitEntriesGone(nl: Netlink, devices: readonly string[], families: readonly (4 | 6)[], left: number): Promise<void> {
  await waitFor(async () => (await mostEntriesLeft(nl, devices, families)) <= left, { timeoutMs: 120_000, intervalMs: 50, what: 'the burst\'s entries gone' });
}
