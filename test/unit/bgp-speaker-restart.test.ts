import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Speaker, type SessionEvent } from '../../src/bgp/index.js';
import { CeaseSubcode, encodeEndOfRib, encodeKeepalive, encodeNotification, NotificationCode } from '../../src/bgp/wire/index.js';
import { MemoryNetwork, settle, type MemoryEnd } from '../helpers/bgp-memory-transport.js';
import { openFrom, updateFrom, type OpenOptions } from '../helpers/bgp-scripted-peer.js';

// Graceful restart as the receiving speaker (RFC 4724 §4.2) on fake time: the restart timer, and
// what may end it. The transport is in memory, so the clock moves only when the test moves it.

const PEER = '198.18.0.2';
const GR_OPEN: OpenOptions = { asn: 65002, holdTime: 30, gracefulRestart: 5 };

let net: MemoryNetwork;
let speaker: Speaker;
let sessions: SessionEvent[];

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  net = new MemoryNetwork();
  speaker = await Speaker.start({
    local: { asn: 65001, routerId: '198.18.0.1' }, listen: [{ host: '198.18.0.1', port: 179 }], transport: net.transport,
    import: { accept: ['10.244.0.0/16,le=32'] },
  });
  sessions = [];
  speaker.on('session', (ev) => sessions.push(ev));
  speaker.addPeer({ address: PEER, asn: 65002, passive: true });
});

afterEach(async () => {
  await speaker.close();
  vi.useRealTimers();
});

/** A connection from the peer that completes OPEN and KEEPALIVE: Established once settled. */
async function connect(open: OpenOptions): Promise<MemoryEnd> {
  const end = net.dial(PEER);
  end.send(Buffer.concat([openFrom(open), encodeKeepalive()]));
  await settle();
  expect(speaker.peerStates()[0]!.state).toBe('established');
  return end;
}

/** A graceful-restart session that announced `announced`, then lost its connection without a NOTIFICATION. */
async function learnThenDrop(announced: string[]): Promise<void> {
  const end = await connect(GR_OPEN);
  end.send(updateFrom({ prefixes: announced }));
  await settle();
  end.reset();
  await settle();
}

const prefixes = (): string[] => [...speaker.peerRoutes(PEER)].map((r) => r.prefix);

describe('graceful restart, receiving speaker (RFC 4724 §4.2)', () => {
  it('keeps the routes through a dropped connection and sweeps what is still stale at End-of-RIB', async () => {
    await learnThenDrop(['10.244.7.0/24', '10.244.8.0/24']);
    expect(sessions.at(-1)).toMatchObject({ from: 'established', down: { gracefulRestartTime: 5 } });
    expect(prefixes()).toEqual(['10.244.7.0/24', '10.244.8.0/24']);
    const second = await connect(GR_OPEN);
    second.send(Buffer.concat([updateFrom({ prefixes: ['10.244.8.0/24'] }), encodeEndOfRib('ipv4-unicast')]));
    await settle();
    expect(prefixes()).toEqual(['10.244.8.0/24']);
    expect(speaker.stats().peers[0]!.stale).toBe(0);
  });

  it('drops the stale routes when the peer is not back within its restart time', async () => {
    await learnThenDrop(['10.244.7.0/24']);
    vi.advanceTimersByTime(4_900);
    expect(prefixes()).toEqual(['10.244.7.0/24']);
    vi.advanceTimersByTime(200);
    expect(prefixes()).toEqual([]);
    expect([...speaker.bestRoutes()]).toEqual([]);
  });

  it('survives the restart timer of a session that came back and then ended with a NOTIFICATION', async () => {
    // The peer restarts (routes kept as stale, restart timer armed), comes back, then sends a
    // NOTIFICATION: its routes go at once (no graceful restart after a NOTIFICATION, RFC 4724
    // §4.2). The restart timer must go with them: when it fired later, it dropped the routes of
    // a peer no longer in the RIB, and the InvalidArgumentError thrown from a timer ended the process.
    await learnThenDrop(['10.244.7.0/24']);
    const second = await connect(GR_OPEN);
    second.send(encodeNotification(NotificationCode.CEASE, CeaseSubcode.ADMINISTRATIVE_RESET));
    await settle();
    expect(sessions.at(-1)).toMatchObject({ from: 'established', down: { notification: { direction: 'received', code: 6, subcode: 4 } } });
    expect(prefixes()).toEqual([]);
    expect(() => vi.advanceTimersByTime(6_000)).not.toThrow();
    expect(speaker.peerStates()[0]!.state).toBe('active');

    // …and the peer can still come back and be learned from as usual.
    const third = await connect(GR_OPEN);
    third.send(updateFrom({ prefixes: ['10.244.9.0/24'] }));
    await settle();
    expect(prefixes()).toEqual(['10.244.9.0/24']);
  });
});
