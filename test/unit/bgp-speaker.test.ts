import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeTransport, Speaker, type BgpTransport, type SessionEvent, type SpeakerOptions, type SpeakerPeerConfig } from '../../src/bgp/index.js';
import { encodeKeepalive, encodeRouteRefresh, isEndOfRib } from '../../src/bgp/wire/index.js';
import { MessageType, type UpdateMessage } from '../../src/bgp/types.js';
import { openFrom, rawConnection, rawPeer, recordMessages, updateFrom, type ReceivedMessage } from '../helpers/bgp-scripted-peer.js';

// Two Twill speakers (or a speaker and a scripted raw peer) over loopback TCP: no root, no
// namespaces. 127.0.0.1 and 127.0.0.2 are both local on Linux, so each side has its own address.
// Loopback next hops are refused (RFC 4271 §6.3), so B announces with a next hop self of
// 198.18.0.2 (nextHopSelf), as a node with its transport on one address and its pods behind another.

const FAST = { holdTime: 3, connectRetry: 0.5, reconnectMin: 0.1, reconnectMax: 0.5 };
const B_NEXT_HOP = { nextHopSelf: { ipv4: '198.18.0.2' } };
const speakers: Speaker[] = [];
const servers: net.Server[] = [];

afterEach(async () => {
  await Promise.all(speakers.splice(0).map((s) => s.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function speaker(opts: SpeakerOptions): Promise<Speaker> {
  const s = await Speaker.start(opts);
  speakers.push(s);
  return s;
}

function waitFor<T>(emitter: Speaker, event: 'session' | 'routes' | 'end-of-rib', pred: (ev: T) => boolean, timeoutMs = 8000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { emitter.removeListener(event, on as never); reject(new Error(`timed out waiting for ${event}`)); }, timeoutMs);
    function on(ev: T): void {
      if (!pred(ev)) return;
      clearTimeout(timer);
      emitter.removeListener(event, on as never);
      resolve(ev);
    }
    emitter.on(event, on as never);
  });
}

const established = (peer: string) => (ev: SessionEvent) => ev.peer === peer && ev.state === 'established';

/** A listening speaker on 127.0.0.1 (port picked by the kernel) and an active one on 127.0.0.2. */
async function pair(a: { asn: number; peer?: Partial<SpeakerPeerConfig> }, b: { asn: number; peer?: Partial<SpeakerPeerConfig> }) {
  const accept = { accept: ['10.0.0.0/8,le=32', 'fd00::/8,le=128'] };
  const A = await speaker({ local: { asn: a.asn, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }], import: accept });
  const port = A.listenAddresses[0]!.port;
  const B = await speaker({ local: { asn: b.asn, routerId: '2.2.2.2' }, import: accept });
  const upA = waitFor(A, 'session', established('127.0.0.2'));
  const upB = waitFor(B, 'session', established('127.0.0.1'));
  A.addPeer({ address: '127.0.0.2', asn: b.asn, passive: true, timers: FAST, ...a.peer });
  B.addPeer({ address: '127.0.0.1', port, asn: a.asn, localAddress: '127.0.0.2', timers: FAST, export: B_NEXT_HOP, ...b.peer });
  await Promise.all([upA, upB]);
  return { A, B, port };
}

describe('Speaker over loopback', () => {
  it('brings up eBGP, carries an announcement with prepended AS and the configured next hop self, then its withdrawal', async () => {
    const { A, B } = await pair({ asn: 65001 }, { asn: 65002 });
    const learned = waitFor<{ announced: { prefix: string; nextHop: string; attributes: { asPath: { asns: number[] }[] } }[] }>(A, 'routes', (ev) => ev.announced.length > 0);
    B.set([{ prefix: '10.244.2.0/24' }]);
    const ev = await learned;
    expect(ev.announced).toHaveLength(1);
    expect(ev.announced[0]).toMatchObject({ prefix: '10.244.2.0/24', nextHop: '198.18.0.2' });
    expect(ev.announced[0]!.attributes.asPath.flatMap((s) => s.asns)).toEqual([65002]);
    expect([...A.bestRoutes('ipv4-unicast')].map((r) => r.route.prefix)).toEqual(['10.244.2.0/24']);

    const gone = waitFor<{ withdrawn: { prefix: string }[] }>(A, 'routes', (e) => e.withdrawn.length > 0);
    B.set([]);
    expect((await gone).withdrawn).toEqual([{ family: 'ipv4-unicast', prefix: '10.244.2.0/24' }]);
    expect([...A.bestRoutes()]).toEqual([]);
  });

  it('speaks 4-octet ASNs (RFC 6793) and iBGP with LOCAL_PREF', async () => {
    const { A, B } = await pair({ asn: 4200000001 }, { asn: 4200000001 });
    const learned = waitFor<{ announced: { attributes: { asPath: unknown[]; localPref?: number } }[] }>(A, 'routes', (ev) => ev.announced.length > 0);
    B.set([{ prefix: '10.244.9.0/24' }]);
    const ev = await learned;
    expect(ev.announced[0]!.attributes.asPath).toEqual([]);
    expect(ev.announced[0]!.attributes.localPref).toBe(100);
    expect(A.peerStates()[0]).toMatchObject({ state: 'established', negotiated: { fourOctetAsn: true, peerAsn: 4200000001 } });
  });

  it('carries IPv6 unicast over an IPv4 session when both negotiate it', async () => {
    const fam = { families: ['ipv4-unicast', 'ipv6-unicast'] as const };
    const { A, B } = await pair({ asn: 65001, peer: fam }, { asn: 65002, peer: { ...fam, export: { nextHopSelf: { ipv6: 'fd00::2' } } } });
    const learned = waitFor<{ announced: { family: string; prefix: string; nextHop: string }[] }>(A, 'routes', (ev) => ev.announced.some((r) => r.family === 'ipv6-unicast'));
    B.set([{ prefix: 'fd00:10:244:2::/64' }]);
    expect((await learned).announced).toEqual([expect.objectContaining({ family: 'ipv6-unicast', prefix: 'fd00:10:244:2::/64', nextHop: 'fd00::2' })]);
  });

  it('refuses a peer with the wrong AS with NOTIFICATION 2/2 and keeps retrying', async () => {
    const A = await speaker({ local: { asn: 65001, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }] });
    const B = await speaker({ local: { asn: 65002, routerId: '2.2.2.2' } });
    A.addPeer({ address: '127.0.0.2', asn: 65099, passive: true, timers: FAST });
    const refused = waitFor<SessionEvent>(A, 'session', (ev) => /NOTIFICATION|AS 65002/.test(ev.reason ?? ''));
    const told = waitFor<SessionEvent>(B, 'session', (ev) => /NOTIFICATION 2\/2 received/.test(ev.reason ?? ''));
    B.addPeer({ address: '127.0.0.1', port: A.listenAddresses[0]!.port, asn: 65001, localAddress: '127.0.0.2', timers: FAST });
    expect((await refused).reason).toMatch(/says it is AS 65002, configured AS 65099/);
    await told;
    expect(A.peerStates()[0]!.state).not.toBe('established');
  });

  it('ends a session whose peer goes silent when the hold timer expires (NOTIFICATION 4/0)', async () => {
    const A = await speaker({ local: { asn: 65001, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }] });
    A.addPeer({ address: '127.0.0.2', asn: 65002, passive: true, timers: FAST });
    const up = waitFor(A, 'session', established('127.0.0.2'));
    const { received } = await rawPeer(A.listenAddresses[0]!.port, { asn: 65002, holdTime: 3 });
    await up;
    const t0 = Date.now();
    const down = await waitFor<SessionEvent>(A, 'session', (ev) => ev.from === 'established');
    expect(down.reason).toMatch(/hold timer expired/);
    expect(Date.now() - t0).toBeGreaterThan(2000);
    await expect.poll(() => received.some((m) => m.type === 3 && m.code === 4), { timeout: 2000 }).toBe(true);
  });

  it('keeps a session whose peer sends a message within every hold time (each one restarts the hold timer)', async () => {
    const A = await speaker({ local: { asn: 65001, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }] });
    A.addPeer({ address: '127.0.0.2', asn: 65002, passive: true, timers: FAST });
    const up = waitFor(A, 'session', established('127.0.0.2'));
    const peer = await rawPeer(A.listenAddresses[0]!.port, { asn: 65002, holdTime: 3 });
    await up;
    let dropped = false;
    A.on('session', (ev: SessionEvent) => { if (ev.from === 'established') dropped = true; });
    const [first] = A.peerStates();
    expect(first!.negotiated?.holdTime).toBe(3);
    // KEEPALIVEs a second apart, until the session has been up for one hold time and a half
    // (without the restarts, the timer expires at 3 s) or has dropped.
    const beat = setInterval(() => peer.send(encodeKeepalive()), 1000);
    try {
      await expect.poll(() => dropped || Date.now() - first!.establishedAt! >= 4500, { timeout: 8000, interval: 50 }).toBe(true);
    } finally {
      clearInterval(beat);
    }
    expect(dropped).toBe(false);
    expect(A.peerStates()[0]).toMatchObject({ state: 'established', establishedAt: first!.establishedAt });
  });

  it('keeps a graceful-restart peer\'s routes as stale when its connection drops, until its End-of-RIB', async () => {
    const A = await speaker({ local: { asn: 65001, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }], import: { accept: ['10.0.0.0/8,le=32'] } });
    A.addPeer({ address: '127.0.0.2', asn: 65002, passive: true, timers: FAST });
    const port = A.listenAddresses[0]!.port;
    const up = waitFor(A, 'session', established('127.0.0.2'));
    const first = await rawPeer(port, { asn: 65002, holdTime: 30, gracefulRestart: 60 });
    await up;
    const learned = waitFor(A, 'routes', (ev: { announced: unknown[] }) => ev.announced.length === 1);
    first.send(updateFrom({ prefixes: ['10.244.7.0/24'] }));
    await learned;
    first.socket.destroy();
    await waitFor<SessionEvent>(A, 'session', (ev) => ev.from === 'established');
    expect([...A.bestRoutes()].map((r) => r.route.prefix)).toEqual(['10.244.7.0/24']);

    const back = waitFor(A, 'session', established('127.0.0.2'));
    const second = await rawPeer(port, { asn: 65002, holdTime: 30, gracefulRestart: 60 });
    await back;
    const swept = waitFor(A, 'routes', (ev: { withdrawn: unknown[] }) => ev.withdrawn.length === 1);
    second.send(Buffer.from('ffffffffffffffffffffffffffffffff001702' + '0000' + '0000', 'hex')); // End-of-RIB (IPv4)
    await swept;
    expect([...A.bestRoutes()]).toEqual([]);
    second.socket.destroy();
  });

  it('sends Cease/1 when a peer exceeds its maximum number of prefixes', async () => {
    const A = await speaker({ local: { asn: 65001, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }] });
    A.addPeer({ address: '127.0.0.2', asn: 65002, passive: true, timers: FAST, import: { accept: ['10.0.0.0/8,le=32'], maxPrefixes: 1 } });
    const peer = await rawPeer(A.listenAddresses[0]!.port, { asn: 65002, holdTime: 30 });
    peer.send(updateFrom({ prefixes: ['10.1.0.0/24'] }));
    peer.send(updateFrom({ prefixes: ['10.2.0.0/24'] }));
    await expect.poll(() => peer.received.some((m) => m.type === 3 && m.code === 6 && m.subcode === 1), { timeout: 3000 }).toBe(true);
  });

  it('resolves a connection collision (RFC 4271 §6.8): both sides dial at once, the connection of the higher BGP identifier stays, the other gets Cease/7', async () => {
    // Both speakers listen and dial each other in the same tick. A tap on every TCP connection
    // records what arrived on it, so the NOTIFICATION that closed the loser can be seen.
    const taps: Tap[] = [];
    const accept = { accept: ['10.0.0.0/8,le=32'] };
    const A = await speaker({ local: { asn: 65001, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }], import: accept, transport: tapping('A', taps) });
    const B = await speaker({ local: { asn: 65002, routerId: '2.2.2.2' }, listen: [{ host: '127.0.0.2', port: 0 }], import: accept, transport: tapping('B', taps) });
    const events: SessionEvent[] = [];
    A.on('session', (ev) => events.push(ev));
    B.on('session', (ev) => events.push(ev));
    const collisions: string[] = [];
    A.on('collision', (ev) => collisions.push(`A ${ev.peer} ${ev.closed}`));
    B.on('collision', (ev) => collisions.push(`B ${ev.peer} ${ev.closed}`));
    const upA = waitFor<SessionEvent>(A, 'session', established('127.0.0.2'));
    const upB = waitFor<SessionEvent>(B, 'session', established('127.0.0.1'));
    A.addPeer({ address: '127.0.0.2', port: B.listenAddresses[0]!.port, localAddress: '127.0.0.1', asn: 65002, timers: FAST });
    B.addPeer({ address: '127.0.0.1', port: A.listenAddresses[0]!.port, localAddress: '127.0.0.2', asn: 65001, timers: FAST, export: B_NEXT_HOP });
    const [evA, evB] = await Promise.all([upA, upB]);
    expect(evA.negotiated).toMatchObject({ peerAsn: 65002, peerRouterId: '2.2.2.2' });
    expect(evB.negotiated).toMatchObject({ peerAsn: 65001, peerRouterId: '1.1.1.1' });
    const learned = waitFor(A, 'routes', (ev: { announced: unknown[] }) => ev.announced.length === 1);
    B.set([{ prefix: '10.244.2.0/24' }]);
    await learned;
    // Stays up: a hold time (3 s) later, still the one session on each side and no other event.
    await new Promise((r) => setTimeout(r, FAST.holdTime * 1000 + 500));
    expect(A.peerStates()).toMatchObject([{ address: '127.0.0.2', state: 'established' }]);
    expect(B.peerStates()).toMatchObject([{ address: '127.0.0.1', state: 'established' }]);
    expect(events.filter((ev) => ev.state === 'established')).toHaveLength(2);
    expect(events.filter((ev) => ev.from === 'established')).toEqual([]);

    // Both connections were made: each side dialled one and accepted the other.
    expect(taps.map((t) => `${t.side} ${t.dialled ? 'dialled' : 'accepted'}`).sort()).toEqual(['A accepted', 'A dialled', 'B accepted', 'B dialled']);
    // B's identifier is higher, so the connection B dialled survives and the one A dialled is closed
    // with Cease/7, by either side (both resolve it alike) and seen by the other end.
    const loser = taps.filter((t) => (t.side === 'A') === t.dialled);
    const winner = taps.filter((t) => (t.side === 'B') === t.dialled);
    expect(loser.every((t) => t.closed)).toBe(true);
    expect(winner.some((t) => t.closed)).toBe(false);
    expect(loser.flatMap((t) => t.received).filter((m) => m.type === MessageType.NOTIFICATION).map((m) => `${m.code}/${m.subcode}`)).toContain('6/7');
    expect(winner.flatMap((t) => t.received).filter((m) => m.type === MessageType.NOTIFICATION)).toEqual([]);
    // Whoever closed the loser reported it, naming the connection A dialled.
    expect(collisions.length).toBeGreaterThan(0);
    for (const c of collisions) expect(['A 127.0.0.2 outgoing', 'B 127.0.0.1 incoming']).toContain(c);
    // …and the winner carried the session: B's route went to A over it.
    expect(winner.find((t) => t.side === 'A')!.received.some((m) => m.type === MessageType.UPDATE && m.nlri.includes('10.244.2.0/24'))).toBe(true);
  }, 15_000);

  it('answers a ROUTE-REFRESH (RFC 2918) with its routes again, and no End-of-RIB after them', async () => {
    const A = await speaker({ local: { asn: 65001, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }], import: { accept: ['10.0.0.0/8,le=32'] } });
    A.set([{ prefix: '10.244.1.0/24' }, { prefix: '10.244.2.0/24' }]);
    A.addPeer({ address: '127.0.0.2', asn: 65002, passive: true, timers: FAST });
    const peer = await rawPeer(A.listenAddresses[0]!.port, { asn: 65002, holdTime: 3 });
    const updates = (): ReceivedMessage[] => peer.received.filter((m) => m.type === MessageType.UPDATE);
    const announced = (): string[] => updates().flatMap((m) => [...(m.nlri ?? [])]).sort();
    const endOfRibs = (): number => updates().filter((m) => isEndOfRib(m as UpdateMessage) !== undefined).length;
    // The initial table, then its End-of-RIB.
    await expect.poll(endOfRibs, { timeout: 3000 }).toBe(1);
    expect(announced()).toEqual(['10.244.1.0/24', '10.244.2.0/24']);
    peer.send(encodeRouteRefresh('ipv4-unicast'));
    await expect.poll(announced, { timeout: 3000 }).toEqual(['10.244.1.0/24', '10.244.1.0/24', '10.244.2.0/24', '10.244.2.0/24']);
    // A KEEPALIVE round later (hold time 3 s: one a second) nothing else has come.
    const seen = peer.received.length;
    await expect.poll(() => peer.received.slice(seen).some((m) => m.type === MessageType.KEEPALIVE), { timeout: 3000 }).toBe(true);
    expect(endOfRibs()).toBe(1);
    expect(A.peerStates()).toMatchObject([{ address: '127.0.0.2', state: 'established' }]);
    peer.socket.destroy();
  });

  it('reports Established with the negotiated values when a second connection is still opening (and closes it with Cease/7)', async () => {
    const A = await speaker({ local: { asn: 65001, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }], import: { accept: ['10.0.0.0/8,le=32'] } });
    const events: SessionEvent[] = [];
    A.on('session', (ev) => events.push(ev));
    A.addPeer({ address: '127.0.0.2', asn: 65002, passive: true, timers: FAST });
    const port = A.listenAddresses[0]!.port;
    // First connection: OPEN exchanged, our KEEPALIVE held back (A waits in OpenConfirm).
    const first = await rawConnection(port);
    first.socket.write(openFrom({ asn: 65002, holdTime: 3 }));
    await expect.poll(() => first.received.some((m) => m.type === MessageType.KEEPALIVE), { timeout: 3000 }).toBe(true);
    // A second connection from the same peer, which A answers with its OPEN.
    const second = await rawConnection(port);
    await expect.poll(() => second.received.some((m) => m.type === MessageType.OPEN), { timeout: 3000 }).toBe(true);
    const up = waitFor<SessionEvent>(A, 'session', established('127.0.0.2'));
    first.socket.write(encodeKeepalive());
    const ev = await up;
    expect(ev.reason).toBe('KEEPALIVE received');
    expect(ev.negotiated).toMatchObject({ peerAsn: 65002, peerRouterId: '2.2.2.2' });
    await expect.poll(() => second.received.some((m) => m.type === MessageType.NOTIFICATION && m.code === 6 && m.subcode === 7), { timeout: 3000 }).toBe(true);
    expect(events.filter((e) => e.state === 'established')).toHaveLength(1);
    expect(A.peerStates()).toMatchObject([{ address: '127.0.0.2', state: 'established' }]);
    first.socket.destroy();
    second.socket.destroy();
  });
});

/** What arrived on one TCP connection of a speaker, decoded. */
interface Tap {
  readonly side: string;
  readonly dialled: boolean;
  readonly received: ReceivedMessage[];
  closed: boolean;
}

/** The plain Node transport with a tap on every connection it makes or accepts. */
function tapping(side: string, taps: Tap[]): BgpTransport {
  const tap = (socket: net.Socket, dialled: boolean): void => {
    const t: Tap = { side, dialled, received: [], closed: false };
    // Added before the speaker's own listener sees any data (same tick), so nothing is missed.
    recordMessages(socket, t.received);
    socket.on('close', () => { t.closed = true; });
    taps.push(t);
  };
  return {
    connect: async (opts) => {
      const socket = await nodeTransport.connect(opts);
      tap(socket, true);
      return socket;
    },
    listen: async (opts) => {
      const listener = await nodeTransport.listen(opts);
      listener.server.prependListener('connection', (socket: net.Socket) => tap(socket, false));
      return listener;
    },
  };
}
