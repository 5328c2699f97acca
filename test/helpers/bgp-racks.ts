/**
 * Two racks behind real routers, as a data centre runs the bgp backend (Calico's "AS per rack"):
 *
 *   rack A, AS 65001: h1 198.18.1.1, h2 198.18.1.2 on segment 198.18.1.0/24, ToR A (BIRD 2) .254
 *   rack B, AS 65002: h3 198.18.2.3, h4 198.18.2.4 on segment 198.18.2.0/24, ToR B (FRR 8.4) .254
 *   ToR A 198.18.3.1/30 <-> 198.18.3.2/30 ToR B, eBGP between the racks
 *
 * Each host peers iBGP with its ToR only (--bgp-asn, --bgp-peer), the ToR reflects its hosts'
 * routes to each other (route-reflector clients) and sends them the other rack's with itself as
 * next hop, and installs its best routes in its kernel (a ToR forwards). The underlay between the
 * racks is routed statically, as an IGP would; hosts have a default route via their ToR. etcd
 * runs on ToR A's segment address, so every host reaches it through the fabric.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, CleanupRegistry, tempDir } from './cleanup.js';
import { startEtcd, type Etcd } from './etcd.js';
import { startPeerDaemon, type PeerDaemon, type PeerKind } from './bgp-peers.js';
import { connectNetns, createTestNetns, type TestNetns } from './netns.js';
import { groupId } from './names.js';

export interface RackHost {
  readonly ns: TestNetns;
  readonly ip: string;
  readonly rack: 0 | 1;
  readonly asn: number;
  readonly tor: string;
  readonly dir: string;
}

export interface Racks {
  readonly tors: readonly [TestNetns, TestNetns];
  readonly torDaemons: readonly [PeerDaemon, PeerDaemon];
  readonly hosts: readonly RackHost[];
  readonly etcd: Etcd;
  readonly dir: string;
}

const RACKS = [
  { asn: 65001, segment: '198.18.1', spine: '198.18.3.1', kind: 'bird' as PeerKind },
  { asn: 65002, segment: '198.18.2', spine: '198.18.3.2', kind: 'frr' as PeerKind },
] as const;
export const RACK_PREFIX = '/coreos.com/network';

export async function startRacks(opts: { readonly label: string; readonly backend: Record<string, unknown>; readonly torAnnounce?: readonly string[] }): Promise<Racks> {
  const group = groupId();
  const dir = tempDir(opts.label);
  // One registry for the whole bed, as createCluster has: a daemon started inside a host later
  // (an agent restarted by a test) lives as long as the bed, not just the test that started it.
  const own = new CleanupRegistry(`racks ${group}`);
  cleanup.defer(`racks ${group}`, () => own.runAll(), { timeoutMs: 60_000 });
  const tors = await Promise.all(RACKS.map((_, r) => createTestNetns(`tor${r}`, { group, registry: own }))) as [TestNetns, TestNetns];
  const hosts: RackHost[] = [];
  for (const [r, rack] of RACKS.entries()) {
    const tor = tors[r]!;
    tor.writeSysctl('net.ipv4.ip_forward', 1);
    await tor.netlink(async (nl) => {
      await nl.createBridge({ name: 'rack', mtu: 1500 });
      await nl.addAddress('rack', `${rack.segment}.254/24`);
      await nl.setUp('rack');
    });
    for (const n of r === 0 ? [1, 2] : [3, 4]) {
      const ns = await createTestNetns(`h${n}`, { group, registry: own });
      const ip = `${rack.segment}.${n}`;
      await tor.netlink(async (nl) => {
        await nl.createVeth({ name: `p-h${n}`, peerName: 'eth0', peerNetnsPath: ns.netnsPath, mtu: 1500 });
        await nl.setMaster(`p-h${n}`, 'rack');
        await nl.setUp(`p-h${n}`);
      });
      await ns.netlink(async (nl) => {
        await nl.addAddress('eth0', `${ip}/24`);
        await nl.setUp('eth0');
      });
      await ns.exec('ip', ['route', 'add', 'default', 'via', `${rack.segment}.254`]);
      ns.writeSysctl('net.ipv4.ip_forward', 1);
      const hostDir = join(dir, `h${n}`);
      mkdirSync(hostDir, { recursive: true });
      hosts.push({ ns, ip, rack: r as 0 | 1, asn: rack.asn, tor: `${rack.segment}.254`, dir: hostDir });
    }
  }
  await connectNetns(tors[0], tors[1], { a: { ifname: 'spine', cidr: `${RACKS[0].spine}/30` }, b: { ifname: 'spine', cidr: `${RACKS[1].spine}/30` } });
  // The underlay between the racks (an IGP's job in a real fabric; BGP here carries pod routes only).
  await tors[0].exec('ip', ['route', 'add', `${RACKS[1].segment}.0/24`, 'via', RACKS[1].spine]);
  await tors[1].exec('ip', ['route', 'add', `${RACKS[0].segment}.0/24`, 'via', RACKS[0].spine]);

  const etcd = await startEtcd({ netns: tors[0].name, host: `${RACKS[0].segment}.254` });
  await etcd.etcdctl(['put', `${RACK_PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'bgp', ...opts.backend } })]);

  const torDaemons = await Promise.all(RACKS.map((rack, r) => startPeerDaemon({
    kind: rack.kind, netns: tors[r]!, asn: rack.asn, routerId: `${rack.segment}.254`, label: `tor${r}`,
    exportLearned: true, installRoutes: true,
    announce: r === 0 ? (opts.torAnnounce ?? []).map((prefix) => ({ prefix })) : [],
    neighbors: [
      ...hosts.filter((h) => h.rack === r).map((h) => ({ address: h.ip, asn: rack.asn, routeReflectorClient: true, nextHopSelf: true, gracefulRestart: true })),
      { address: RACKS[1 - r]!.spine, asn: RACKS[1 - r]!.asn },
    ],
  }))) as [PeerDaemon, PeerDaemon];
  return { tors, torDaemons, hosts, etcd, dir };
}

/** twilld's per-host BGP flags in this topology: the rack's AS, the ToR as the only peer. */
export function rackAgentArgs(h: RackHost): string[] {
  return ['--iface', 'eth0', '--resync-interval', '1s', '--bgp-asn', String(h.asn), '--bgp-peer', `${h.tor},asn=${h.asn}`];
}
