import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Speaker, type BestChange, type PeerRoutesEvent, type SpeakerOptions, type SpeakerPeerConfig } from '../../src/bgp/index.js';
import { buildOpen } from '../../src/bgp/session/open.js';
import { resolvePeerConfig, validateLocal } from '../../src/bgp/session/config.js';
import { MessageType, type GracefulRestartCapability, type OpenMessage, type UpdateMessage } from '../../src/bgp/types.js';
import { encodeEndOfRib, encodeKeepalive, encodeOpen, isEndOfRib } from '../../src/bgp/wire/index.js';
import { MemoryNetwork, settle, type MemoryEnd } from '../helpers/bgp-memory-transport.js';
import { openFrom, updateFrom, type OpenOptions } from '../helpers/bgp-scripted-peer.js';

// Graceful restart as the restarting speaker (RFC 4724 §3, §4.1), over the in-memory transport on
// fake time: what our OPENs say (the families, the R and F bits), a graceful close (no
// NOTIFICATION, so the peers keep our routes), and a restarted speaker's wait for its peers'
// End-of-RIB before its first UPDATEs. The receiving side is bgp-speaker-restart.test.ts.

const LOCAL = { asn: 65001, routerId: '198.18.0.1' };
const PEER = '198.18.0.2';
const OTHER = '198.18.0.3';
const BOTH = ['ipv4-unicast', 'ipv6-unicast'] as const;
/** A peer that helps with our restart: graceful restart advertised, Restart State bit clear. */
const HELPER: OpenOptions = { asn: 65002, holdTime: 30, gracefulRestart: 90, restarting: false };

let net: MemoryNetwork;
/** The last one start() made; every one is closed after the test. */
let speaker: Speaker;
const started: Speaker[] = [];

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  net = new MemoryNetwork();
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
  vi.useRealTimers();
});

async function start(opts: Partial<SpeakerOptions> = {}, ...peers: Partial<SpeakerPeerConfig>[]): Promise<Speaker> {
  speaker = await Speaker.start({
    local: LOCAL, listen: [{ host: LOCAL.routerId, port: 179 }], transport: net.transport,
    import: { accept: ['10.244.0.0/16,le=32'] }, ...opts,
  });
  started.push(speaker);
  for (const p of peers.length > 0 ? peers : [{}]) speaker.addPeer({ address: PEER, asn: 65002, passive: true, ...p });
  return speaker;
}

/** A connection from `from` that completes OPEN and KEEPALIVE: Established once settled. */
async function connect(open: OpenOptions, from = PEER): Promise<MemoryEnd> {
  const end = net.dial(from);
  end.send(Buffer.concat([openFrom(open), encodeKeepalive()]));
  await settle();
  expect(speaker.peerStates().find((p) => p.address === from)?.state).toBe('established');
  return end;
}

const openOf = (end: MemoryEnd): OpenMessage => end.received.find((m): m is OpenMessage => m.type === MessageType.OPEN)!;
const grOf = (end: MemoryEnd): GracefulRestartCapability | undefined => openOf(end).capabilities.gracefulRestart;
const updates = (end: MemoryEnd): UpdateMessage[] => end.received.filter((m): m is UpdateMessage => m.type === MessageType.UPDATE);
/** What the peer got, in order: announced prefixes, and "EoR <family>" for each End-of-RIB. */
const told = (end: MemoryEnd): string[] => updates(end).flatMap((m) => {
  const eor = isEndOfRib(m);
  return eor ? [`EoR ${eor}`] : [...m.nlri, ...(m.mpReach?.nlri ?? [])];
});
const notifications = (end: MemoryEnd): string[] => end.received.filter((m) => m.type === MessageType.NOTIFICATION).map((m) => `${m.code}/${m.subcode}`);

/** The Graceful Restart capability's value in an encoded OPEN (RFC 5492 §4 parameters, RFC 4724 §3 layout). */
function grCapabilityBytes(open: Buffer): Buffer | undefined {
  const end = 29 + open[28]!;
  for (let p = 29; p < end; p += 2 + open[p + 1]!) {
    if (open[p] !== 2) continue; // optional parameter 2: capabilities
    const caps = p + 2 + open[p + 1]!;
    for (let c = p + 2; c < caps; c += 2 + open[c + 1]!) if (open[c] === 64) return open.subarray(c + 2, c + 2 + open[c + 1]!);
  }
  return undefined;
}

describe('our graceful restart capability (RFC 4724 §3)', () => {
  const peer = resolvePeerConfig({ address: PEER, asn: 65002, families: [...BOTH] });
  const encoded = (restarting: boolean, forwardingPreserved: boolean): Buffer | undefined =>
    grCapabilityBytes(encodeOpen(buildOpen(validateLocal(LOCAL), peer, { restarting, forwardingPreserved })));

  it('lists every family of the session, so a receiving peer keeps our routes for them (RFC 4724 §4.2)', () => {
    // Restart Flags + Restart Time 120 (0x078), then AFI 1 / SAFI 1 and AFI 2 / SAFI 1, each with its flags.
    expect(encoded(false, false)).toEqual(Buffer.from([0x00, 0x78, 0, 1, 1, 0x00, 0, 2, 1, 0x00]));
  });

  it('sets the Restart State bit and each family\'s Forwarding State bit when asked', () => {
    expect(encoded(true, true)).toEqual(Buffer.from([0x80, 0x78, 0, 1, 1, 0x80, 0, 2, 1, 0x80]));
    expect(encoded(false, true)).toEqual(Buffer.from([0x00, 0x78, 0, 1, 1, 0x80, 0, 2, 1, 0x80]));
  });

  it('is left out for a peer with graceful restart disabled (restart time 0)', () => {
    const off = resolvePeerConfig({ address: PEER, asn: 65002, gracefulRestartTime: 0 });
    expect(grCapabilityBytes(encodeOpen(buildOpen(validateLocal(LOCAL), off, { restarting: true, forwardingPreserved: true })))).toBeUndefined();
  });

  it('first start: families listed, F clear; after the session was up once, F set (the process kept its forwarding state)', async () => {
    await start({}, { families: [...BOTH] });
    const first = await connect({ ...HELPER, families: [...BOTH] });
    expect(grOf(first)).toEqual({
      restarting: false, restartTime: 120,
      families: [{ family: 'ipv4-unicast', forwardingPreserved: false }, { family: 'ipv6-unicast', forwardingPreserved: false }],
    });
    first.reset();
    await settle();
    const second = await connect({ ...HELPER, families: [...BOTH] });
    expect(grOf(second)).toMatchObject({ restarting: false, families: [{ forwardingPreserved: true }, { forwardingPreserved: true }] });
  });

  it('restarting: R and F set in every OPEN until the session is first established, then R clear', async () => {
    await start({ restarting: true }, { gracefulRestartTime: 300 });
    // An attempt that never reaches Established (the peer hangs up after its OPEN): still restarting.
    const refused = net.dial(PEER);
    await settle();
    refused.reset();
    await settle();
    expect(grOf(refused)).toEqual({ restarting: true, restartTime: 300, families: [{ family: 'ipv4-unicast', forwardingPreserved: true }] });
    const first = await connect(HELPER);
    expect(grOf(first)).toMatchObject({ restarting: true, families: [{ forwardingPreserved: true }] });
    first.reset();
    await settle();
    const second = await connect(HELPER);
    expect(grOf(second)).toMatchObject({ restarting: false, families: [{ forwardingPreserved: true }] });
  });
});

describe('End-of-RIB after the initial table (RFC 4724 §2)', () => {
  it('is sent for every family even when there is nothing to announce', async () => {
    await start({}, { families: [...BOTH] });
    const end = await connect({ asn: 65002, holdTime: 30, families: [...BOTH] });
    expect(told(end)).toEqual(['EoR ipv4-unicast', 'EoR ipv6-unicast']);
  });

  it('follows the table when there is one', async () => {
    await start();
    speaker.set([{ prefix: '10.244.1.0/24' }]);
    const end = await connect({ asn: 65002, holdTime: 30 });
    expect(told(end)).toEqual(['10.244.1.0/24', 'EoR ipv4-unicast']);
  });
});

describe('graceful close (RFC 4724 §4)', () => {
  /** Learned one route from a graceful-restart peer, and records the speaker's route events from now on. */
  async function learned(): Promise<{ end: MemoryEnd; events: (PeerRoutesEvent | readonly BestChange[])[] }> {
    const end = await connect(HELPER);
    end.send(updateFrom({ prefixes: ['10.244.7.0/24'] }));
    await settle();
    expect([...speaker.peerRoutes(PEER)].map((r) => r.prefix)).toEqual(['10.244.7.0/24']);
    const events: (PeerRoutesEvent | readonly BestChange[])[] = [];
    speaker.on('routes', (ev) => events.push(ev));
    speaker.on('best', (ev) => events.push(ev));
    return { end, events };
  }

  it('closes the connection without a NOTIFICATION and reports no withdrawal (the kernel keeps the routes)', async () => {
    await start();
    speaker.set([{ prefix: '10.244.1.0/24' }]);
    const { end, events } = await learned();
    await speaker.close('restarting', { graceful: true });
    await settle();
    expect(end.closed).toBe(true);
    expect(notifications(end)).toEqual([]);
    // Nor later: no restart timer was left behind for the peer's routes (its restart time is 90 s).
    vi.advanceTimersByTime(120_000);
    expect(events).toEqual([]);
  });

  it('without `graceful`, says Cease/2 with the text, as before', async () => {
    await start();
    const { end, events } = await learned();
    await speaker.close('going away');
    await settle();
    expect(end.received.filter((m) => m.type === MessageType.NOTIFICATION)).toMatchObject([{ code: 6, subcode: 2, shutdownText: 'going away' }]);
    expect(events.length).toBeGreaterThan(0);
  });

  it('still says Cease/2 to a peer we did not advertise graceful restart to: it would not keep our routes anyway', async () => {
    await start({}, { gracefulRestartTime: 0 });
    const end = await connect(HELPER);
    await speaker.close('restarting', { graceful: true });
    await settle();
    expect(notifications(end)).toEqual(['6/2']);
  });
});

describe('a restarted speaker defers its first UPDATEs (RFC 4724 §4.1)', () => {
  it('sends its table and End-of-RIB once the helper peer\'s End-of-RIB is in, and learns meanwhile', async () => {
    await start({ restarting: true });
    speaker.set([{ prefix: '10.244.1.0/24' }]);
    const end = await connect(HELPER);
    end.send(updateFrom({ prefixes: ['10.244.7.0/24'] }));
    await settle();
    expect(told(end)).toEqual([]);
    expect(speaker.peerStates()[0]).toMatchObject({ received: 1, sent: 0 });
    end.send(encodeEndOfRib('ipv4-unicast'));
    await settle();
    expect(told(end)).toEqual(['10.244.1.0/24', 'EoR ipv4-unicast']);
    expect(speaker.peerStates()[0]).toMatchObject({ received: 1, sent: 1 });
  });

  it('waits for every established helper, not for a peer without graceful restart or one restarting itself', async () => {
    await start({ restarting: true }, {}, { address: OTHER }, { address: '198.18.0.4' });
    speaker.set([{ prefix: '10.244.1.0/24' }]);
    const helper = await connect(HELPER);
    const plain = await connect({ asn: 65002, holdTime: 30 }, OTHER);
    const restarting = await connect({ ...HELPER, restarting: true }, '198.18.0.4');
    expect([told(helper), told(plain), told(restarting)]).toEqual([[], [], []]);
    helper.send(encodeEndOfRib('ipv4-unicast'));
    await settle();
    for (const end of [helper, plain, restarting]) expect(told(end)).toEqual(['10.244.1.0/24', 'EoR ipv4-unicast']);
  });

  it('does not wait when no peer can help (no graceful restart on their side)', async () => {
    await start({ restarting: true });
    speaker.set([{ prefix: '10.244.1.0/24' }]);
    const end = await connect({ asn: 65002, holdTime: 30 });
    expect(told(end)).toEqual(['10.244.1.0/24', 'EoR ipv4-unicast']);
  });

  it('gives up waiting after selectionDeferralTime', async () => {
    await start({ restarting: true, selectionDeferralTime: 20 });
    speaker.set([{ prefix: '10.244.1.0/24' }]);
    const end = await connect(HELPER);
    vi.advanceTimersByTime(15_000); // within the hold time (30 s) of the peer's one KEEPALIVE
    await settle();
    expect(told(end)).toEqual([]);
    vi.advanceTimersByTime(5_000);
    await settle();
    expect(told(end)).toEqual(['10.244.1.0/24', 'EoR ipv4-unicast']);
  });

  it('stops waiting for a helper whose session went down', async () => {
    await start({ restarting: true }, {}, { address: OTHER });
    const helper = await connect(HELPER);
    const plain = await connect({ asn: 65002, holdTime: 30 }, OTHER);
    helper.reset();
    await settle();
    expect(told(plain)).toEqual(['EoR ipv4-unicast']);
  });

  it('checks the deferral time', async () => {
    await expect(Speaker.start({ local: LOCAL, selectionDeferralTime: 0 })).rejects.toThrow(/selection deferral time/);
  });
});
