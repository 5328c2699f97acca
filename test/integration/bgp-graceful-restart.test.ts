/**
 * Twill's speaker restarting gracefully (RFC 4724), as the agent does across a restart, against
 * BIRD 2, FRR 8.4 and gobgpd 3.10 with graceful restart on for the session (the harness's
 * per-neighbor `gracefulRestart`: BIRD `graceful restart on`, FRR `neighbor … graceful-restart`,
 * gobgpd `graceful-restart` and `mp-graceful-restart`), each in its own namespace joined to
 * Twill's by veth. The speaker runs in this process with its sockets in Twill's namespace (the
 * kernel transport the agent uses), so a test can close one speaker and start the next:
 *
 *   twill (AS 65001, dials)  ── eBGP ──▶ bird (AS 65002)
 *                            ── eBGP ──▶ frr (AS 65003)      all three passive, each announcing one prefix
 *                            ── eBGP ──▶ gobgp (AS 65004)
 *
 * In order: Twill announces 10.244.1.0/24; a graceful close leaves it with every peer, stale; a
 * speaker started with `restarting` takes over without the route ever missing at any peer; a
 * plain close (Cease) makes every peer drop it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelTransport } from '../../src/backends/bgp/transport.js';
import { Speaker } from '../../src/bgp/index.js';
import { bgpDaemonsAvailable, startPeerDaemon, type LearnedRoute, type PeerDaemon } from '../helpers/bgp-peers.js';
import { groupId } from '../helpers/names.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { sleep, waitFor } from '../helpers/wait.js';

const avail = bgpDaemonsAvailable();
const TWILL_AS = 65001;
const PREFIX = '10.244.1.0/24';
const ACCEPT = { accept: ['10.244.0.0/16,le=32'] };
/** Fast reconnects: gobgpd refuses connections for a second after a session ends (idle-hold-time-after-reset). */
const TIMERS = { holdTime: 9, connectRetry: 1, reconnectMin: 0.2, reconnectMax: 2 };

interface Peer {
  readonly kind: 'bird' | 'frr' | 'gobgp';
  readonly asn: number;
  /** The daemon's address, and Twill's on the same link. */
  readonly address: string;
  readonly twill: string;
  /** What the daemon announces to Twill. */
  readonly announces: string;
  daemon?: PeerDaemon;
}

const PEERS: readonly Peer[] = [
  { kind: 'bird', asn: 65002, address: '198.18.31.2', twill: '198.18.31.1', announces: '10.244.2.0/24' },
  { kind: 'frr', asn: 65003, address: '198.18.32.2', twill: '198.18.32.1', announces: '10.244.3.0/24' },
  { kind: 'gobgp', asn: 65004, address: '198.18.33.2', twill: '198.18.33.1', announces: '10.244.4.0/24' },
];
const daemon = (p: Peer): PeerDaemon => p.daemon!;

/** What a peer holds of Twill's prefix, from its RIB. */
async function held(p: Peer): Promise<LearnedRoute | undefined> {
  return (await daemon(p).learned()).find((r) => r.prefix === PREFIX && r.from === p.twill);
}

/**
 * Polls every peer's RIB for Twill's prefix until stopped, one read after another, recording
 * every read that did not find it: the proof that it never went missing across a restart.
 */
function watchRoute(): { stop(): Promise<{ reads: Map<string, number>; missing: string[] }> } {
  let watching = true;
  const reads = new Map<string, number>();
  const missing: string[] = [];
  const loops = PEERS.map(async (p) => {
    while (watching) {
      const route = await held(p);
      reads.set(p.kind, (reads.get(p.kind) ?? 0) + 1);
      if (route === undefined) missing.push(`${p.kind} at ${new Date().toISOString()}`);
      await sleep(20);
    }
  });
  return {
    async stop() {
      watching = false;
      await Promise.all(loops);
      return { reads, missing };
    },
  };
}

describe.skipIf(!isRoot || !avail.bird || !avail.frr || !avail.gobgp)('Twill\'s graceful restart (RFC 4724) with BIRD, FRR and gobgpd', () => {
  useCleanup();
  let twillNs: TestNetns;
  const speakers: Speaker[] = [];
  const warnings: string[] = [];

  async function startTwill(restarting: boolean): Promise<Speaker> {
    const speaker = await Speaker.start({
      local: { asn: TWILL_AS, routerId: PEERS[0]!.twill }, transport: kernelTransport(twillNs.netnsPath), import: ACCEPT,
      restarting, selectionDeferralTime: 60,
    });
    speakers.push(speaker);
    speaker.on('warning', (err) => warnings.push(err.message));
    speaker.set([{ prefix: PREFIX }]);
    for (const p of PEERS) speaker.addPeer({ address: p.address, asn: p.asn, localAddress: p.twill, timers: TIMERS });
    return speaker;
  }

  const upWithAll = (speaker: Speaker): Promise<unknown> =>
    waitFor(() => speaker.peerStates().every((s) => s.state === 'established'), { timeoutMs: 30_000, intervalMs: 100, what: `Twill established with every peer (${JSON.stringify(speaker.peerStates().map((s) => [s.address, s.state, s.lastError]))}; warnings: ${warnings.slice(-5).join('; ')})` });

  beforeAll(async () => {
    const group = groupId();
    const namespaces = await Promise.all(['twill', ...PEERS.map((p) => p.kind)].map((l) => createTestNetns(l, { group })));
    twillNs = namespaces[0]!;
    await Promise.all(PEERS.map((p, i) => connectNetns(twillNs, namespaces[i + 1]!, {
      a: { ifname: `to-${p.kind}`, cidr: `${p.twill}/29` }, b: { ifname: 'to-twill', cidr: `${p.address}/29` },
    })));
    await Promise.all(PEERS.map(async (p, i) => {
      p.daemon = await startPeerDaemon({
        kind: p.kind, netns: namespaces[i + 1]!, asn: p.asn, routerId: p.address, label: p.kind,
        neighbors: [{ address: p.twill, asn: TWILL_AS, passive: true, gracefulRestart: true }],
        announce: [{ prefix: p.announces }],
      });
    }));
  });

  afterAll(async () => {
    await Promise.all(speakers.map((s) => s.close()));
  });

  it('announces to every peer, with graceful restart negotiated (first start: R and F clear)', async () => {
    const first = await startTwill(false);
    await upWithAll(first);
    for (const p of PEERS) {
      await waitFor(() => held(p), { timeoutMs: 20_000, intervalMs: 100, what: `${p.kind} to learn ${PREFIX}` });
      expect((await held(p))!.stale).toBeUndefined();
    }
    for (const p of PEERS.filter((x) => x.kind !== 'gobgp')) {
      expect((await daemon(p).neighborStatus(p.twill)).gracefulRestart, p.kind).toEqual({ helping: false, peerRestarting: false, peerForwarding: [] });
    }
  });

  it('closes gracefully: no NOTIFICATION, the TCP sessions end, and every peer keeps the route as stale', async () => {
    const first = speakers[0]!;
    const notificationsBefore = await Promise.all(PEERS.map(async (p) => (await daemon(p).neighborStatus(p.twill)).messages?.received.notifications));
    await first.close('restarting', { graceful: true });
    await Promise.all(PEERS.map((p) => daemon(p).waitNotEstablished(p.twill, 10_000)));
    expect(await twillNs.exec('ss', ['-Htn', 'state', 'established'])).toBe('');
    for (const [i, p] of PEERS.entries()) {
      const status = await daemon(p).neighborStatus(p.twill);
      // FRR and gobgpd count NOTIFICATIONs; none came.
      expect(status.messages?.received.notifications, p.kind).toBe(notificationsBefore[i]);
      const route = await held(p);
      expect(route, `${p.kind} still holds ${PREFIX}`).toBeDefined();
      // FRR and gobgpd flag the path stale; BIRD says it helps the neighbor's restart.
      if (p.kind === 'bird') expect(status.gracefulRestart?.helping).toBe(true);
      else expect(route!.stale, p.kind).toBe(true);
      if (p.kind === 'frr') expect(status.gracefulRestart?.helping).toBe(true);
    }
  });

  it('a speaker started with `restarting` takes over: R and F in its OPEN, its table after the peers\' End-of-RIB, the route never missing', async () => {
    const watch = watchRoute();
    let watched: Awaited<ReturnType<ReturnType<typeof watchRoute>['stop']>>;
    let second: Speaker;
    try {
      second = await startTwill(true);
      await upWithAll(second);
      // Its first UPDATEs wait for the End-of-RIB of every peer (RFC 4724 §4.1): all three sent
      // theirs after their tables, so Twill has learned those, and the wait is over well before
      // its 60 s. Each peer then gets Twill's prefix and the other two peers' (eBGP to eBGP).
      await waitFor(() => second.peerStates().every((s) => s.sent === PEERS.length), { timeoutMs: 20_000, intervalMs: 100, what: 'Twill to send its table to every peer' });
      for (const p of PEERS) expect([...second.peerRoutes(p.address)].map((r) => r.prefix), p.kind).toEqual([p.announces]);
      // Each peer takes the route as fresh again once Twill's End-of-RIB is in.
      for (const p of PEERS) {
        await waitFor(async () => (await held(p))?.stale === undefined && !(await daemon(p).neighborStatus(p.twill)).gracefulRestart?.helping,
          { timeoutMs: 20_000, intervalMs: 100, what: `${p.kind} to end the restart` });
      }
    } finally {
      watched = await watch.stop();
    }
    const { reads, missing } = watched;
    expect(missing).toEqual([]);
    for (const p of PEERS) expect(reads.get(p.kind), `reads of ${p.kind}'s RIB`).toBeGreaterThan(3);
    // BIRD and FRR show the bits our OPEN carried.
    for (const p of PEERS.filter((x) => x.kind !== 'gobgp')) {
      expect((await daemon(p).neighborStatus(p.twill)).gracefulRestart, p.kind).toEqual({ helping: false, peerRestarting: true, peerForwarding: ['ipv4-unicast'] });
    }
    // A peer may close or reset one of two crossing connections (RFC 4271 §6.8 collision, or a
    // connection it refuses while the old session is being torn down); nothing else may have failed.
    expect(second.peerStates().map((s) => s.lastError).filter((e) => e !== undefined && !/connection closed by the peer|read ECONNRESET/.test(e))).toEqual([]);
  });

  it('closes with Cease (not gracefully): every peer drops the route at once', async () => {
    const second = speakers[1]!;
    await second.close('stopping for good');
    await Promise.all(PEERS.map((p) => waitFor(async () => (await held(p)) === undefined, { timeoutMs: 10_000, intervalMs: 100, what: `${p.kind} to drop ${PREFIX}` })));
    const frr = PEERS.find((p) => p.kind === 'frr')!;
    expect((await daemon(frr).neighborStatus(frr.twill)).messages?.received.notifications).toBeGreaterThanOrEqual(1);
  });
});
