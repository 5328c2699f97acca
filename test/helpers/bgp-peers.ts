/**
 * Real BGP daemons as test peers, one per call, inside a test network namespace: gobgpd 3.10,
 * BIRD 2.0.12 or FRR 8.4 behind one interface, so a test can swap the kind of peer Twill faces.
 *
 *   const tor = await startPeerDaemon({
 *     kind: 'bird', netns: r1, asn: 65000, routerId: '198.18.0.1',
 *     neighbors: [{ address: '198.18.0.2', asn: 4200000001, passive: true }],
 *     announce: [{ prefix: '10.96.0.0/16' }],
 *   });
 *   await tor.waitEstablished('198.18.0.2');
 *   expect(await tor.learned()).toContainEqual(expect.objectContaining({ prefix: '10.244.1.0/24', asPath: [4200000001] }));
 *   await tor.kill();                 // SIGKILL: the peer sees the TCP connection close at once
 *   await tor.restart();              // same config and announcements
 *   (await tor.neighborStatus('198.18.0.2')).endOfRibReceived;   // ['ipv4-unicast'] (FRR, gobgp)
 *   await tor.requestRouteRefresh('198.18.0.2');                 // ROUTE-REFRESH (FRR, BIRD)
 *
 * What every kind does the same way:
 * - Its own temp dir (config, control socket, pid files; removed by the registry) and control
 *   socket there, so several daemons run side by side (also in one namespace, each bound to its
 *   own `listenAddress`). Readers talk to the unix socket from the test process.
 * - eBGP or iBGP from comparing `asn` with the neighbor's; families from the neighbor address
 *   unless given; fast timers: hold 9 s (keepalive 3) unless `holdTime`, connect retry 1–2 s.
 * - Exports only what it originates (announce/announceMany) unless `exportLearned`, and imports
 *   everything unless `acceptAll: false`. Installs nothing in the kernel (a RIB-only speaker).
 * - It waits for IPv6 DAD to finish before starting (disable DAD in the namespace to save that).
 * - Errors carry the tail of the daemon's output; output() has it all.
 *
 * Kind specifics and the output formats parsed are in bgp-peers-gobgp.ts, -bird.ts and -frr.ts.
 *
 * Know before you write a test:
 * - gobgpd 3.10 waits a random 5-10 s before each outgoing connection (its minimum connect retry is
 *   5 s), so a session where gobgp is the active side takes that long to come up, and again after
 *   every drop. Make gobgp passive (`passive: true`) when the other side can connect.
 * - kill() (SIGKILL) closes the daemon's sockets: peers see the session go at once (~50 ms here),
 *   not at hold-timer expiry. For that, pause() (SIGSTOP): the peer drops it after 6-9 s.
 * - IPv6 next hops: BIRD and FRR add a link-local next hop on direct sessions; learned() reports
 *   the global one.
 * - neighborStatus(): FRR and gobgpd record a neighbor's End-of-RIB even with graceful restart off;
 *   BIRD does not show it. FRR counts messages (route refresh included), BIRD route announcements.
 * - requestRouteRefresh(): FRR and BIRD send a ROUTE-REFRESH; gobgpd never does (it throws).
 *
 * announceMany timings (2 vCPUs, all daemons on them, peer count = the peer's learnedCount()):
 *   bird   100k /32s: in BIRD's table 0.5-0.9 s; at gobgp 1.4-4 s, at FRR 1-1.8 s after the call
 *   bird   1M /32s:   in BIRD's table 5 s; at gobgp 67 s
 *   gobgp  100k:      in gobgpd's RIB 3.5-12 s, at BIRD 6-23 s with one established peer; with two
 *                     established peers gobgpd took 20-35 s for the same 100k
 *   gobgp  1M:        in gobgpd's RIB 53 s, at BIRD 105 s (fresh gobgpd, one peer); with a 1.1M-route
 *                     table already learned, BIRD had not got them after 10 min
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { BirdPeer } from './bgp-peers-bird.js';
import type { PeerDaemonBase } from './bgp-peers-base.js';
import type { PeerDaemon, PeerDaemonOptions } from './bgp-peers-common.js';
import { FRR_DIR, FrrPeer, frrUser } from './bgp-peers-frr.js';
import { GobgpPeer } from './bgp-peers-gobgp.js';
import { commandAvailable } from './exec.js';

export type {
  AnnounceOptions, LearnedRoute, MessageCounts, NeighborStatus, PeerDaemon, PeerDaemonOptions, PeerFamily, PeerKind, PeerNeighbor,
} from './bgp-peers-common.js';
export { canonicalIp, canonicalPrefix } from './bgp-peers-common.js';
export { parseBirdRoutes } from './bgp-peers-bird.js';

/** Starts the daemon and waits until its control interface answers (not until sessions are up). */
export async function startPeerDaemon(opts: PeerDaemonOptions): Promise<PeerDaemon> {
  if (opts.neighbors.length === 0) throw new Error('startPeerDaemon: no neighbors');
  let peer: PeerDaemonBase;
  switch (opts.kind) {
    case 'gobgp': peer = new GobgpPeer(opts); break;
    case 'bird': peer = new BirdPeer(opts); break;
    case 'frr': peer = new FrrPeer(opts); break;
    default: throw new Error(`startPeerDaemon: unknown kind ${String(opts.kind)}`);
  }
  await peer.start();
  return peer;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Which kinds are installed (for describe.skipIf). */
export function bgpDaemonsAvailable(): { gobgp: boolean; bird: boolean; frr: boolean } {
  return {
    gobgp: commandAvailable('gobgpd') && commandAvailable('gobgp'),
    bird: commandAvailable('bird') && commandAvailable('birdc'),
    frr: executable(join(FRR_DIR, 'bgpd')) && executable(join(FRR_DIR, 'zebra')) && commandAvailable('vtysh') && frrUser() !== undefined,
  };
}
