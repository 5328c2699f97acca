import { RTPROT_TWILL, type Netlink } from '../src/netlink/index.js';
import { waitFor } from '../test/helpers/wait.js';
import { percentile, report, round, type RemoteHost } from './report.js';

/**
 * Event-driven drift repair under load: with the agent holding all its leases, one of Twill's
 * entries at a time - a route, a permanent neighbour, an FDB entry - is deleted as an operator
 * would (`ip route del`, through this process's own netlink socket, so the clock starts at the
 * deletion), and the time until the agent has written it again is taken, `count` times per kind.
 * The agent runs with its default resync interval (5 min): only the kernel's notification can
 * bring an entry back this soon. Target: p99 < 1 s.
 */
export async function measureDriftRepair(bench: string, nl: Netlink, device: string, hosts: readonly RemoteHost[], count: number): Promise<void> {
  const dev = await nl.requireLink(device);
  const kinds: { name: string; del: (h: RemoteHost) => Promise<void>; present: (h: RemoteHost) => Promise<boolean> }[] = [
    {
      name: 'route',
      del: (h) => nl.deleteRoute({ dst: h.subnet }),
      present: async (h) => (await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL })).some((r) => r.dst === h.subnet),
    },
    {
      name: 'neighbour',
      del: (h) => nl.deleteNeighbour({ index: dev.index, ip: h.gw }),
      present: async (h) => (await nl.listNeighbours(dev.index)).some((n) => n.ip === h.gw && n.permanent),
    },
    {
      name: 'fdb',
      del: (h) => nl.deleteFdb({ index: dev.index, mac: h.mac, dst: h.ip }),
      present: async (h) => (await nl.listFdb(dev.index)).some((e) => e.mac === h.mac && e.dst === h.ip),
    },
  ];
  for (const kind of kinds) {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const h = hosts[(i * 97) % hosts.length]!; // spread over the table
      const t = performance.now();
      await kind.del(h);
      await waitFor(() => kind.present(h), { timeoutMs: 30_000, intervalMs: 2, what: `${kind.name} of ${h.subnet} written again` });
      times.push(performance.now() - t);
    }
    process.stderr.write(`drift repair, ${kind.name}: p50 ${round(percentile(times, 50), 1)} ms, p99 ${round(percentile(times, 99), 1)} ms over ${count}\n`);
    report({ bench, metric: `repair_${kind.name}_p50_ms`, value: round(percentile(times, 50), 1), unit: 'ms' });
    report({ bench, metric: `repair_${kind.name}_p99_ms`, value: round(percentile(times, 99), 1), unit: 'ms', target: '<1000' });
  }
}
