import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Speaker, type SessionEvent } from '../../src/bgp/index.js';
import { MessageType } from '../../src/bgp/types.js';
import { encodeEndOfRib, encodeKeepalive } from '../../src/bgp/wire/index.js';
import { openFrom, rawConnection, rawPeer, updateFrom, type RawConnection, type ReceivedMessage, type ScriptedPeer } from '../helpers/bgp-scripted-peer.js';

// What a second connection from an established peer's address may do to its session, over
// loopback: the speaker on 127.0.0.1, the scripted peer (and anyone else on its host) on 127.0.0.2.
// RFC 4271 §6.8 decides collisions when an OPEN arrives; RFC 4724 §4.2 lets a restarted peer's
// new session replace the old one. A bare TCP connection decides nothing.

const PEER = '127.0.0.2';
const OPEN = { asn: 65002, holdTime: 30, gracefulRestart: 60 };

let speaker: Speaker;
let port: number;
let events: SessionEvent[];
let warnings: string[];

beforeEach(async () => {
  speaker = await Speaker.start({ local: { asn: 65001, routerId: '1.1.1.1' }, listen: [{ host: '127.0.0.1', port: 0 }], import: { accept: ['10.0.0.0/8,le=32'] } });
  port = speaker.listenAddresses[0]!.port;
  events = [];
  warnings = [];
  speaker.on('session', (ev) => events.push(ev));
  speaker.on('warning', (err) => warnings.push(err.message));
  speaker.addPeer({ address: PEER, asn: 65002, passive: true, timers: { holdTime: 30 } });
});

afterEach(async () => {
  await speaker.close();
});

const prefixes = (): string[] => [...speaker.peerRoutes(PEER)].map((r) => r.prefix).sort();
const notifications = (c: { received: ReceivedMessage[] }): string[] => c.received.filter((m) => m.type === MessageType.NOTIFICATION).map((m) => `${m.code}/${m.subcode}`);
const hasOpen = (c: { received: ReceivedMessage[] }): boolean => c.received.some((m) => m.type === MessageType.OPEN);
const closed = (c: RawConnection | ScriptedPeer): Promise<void> => new Promise((r) => (c.socket.closed ? r() : c.socket.once('close', () => r())));

/** The peer up, with graceful restart, and one route learned from it. */
async function established(): Promise<ScriptedPeer> {
  const first = await rawPeer(port, OPEN);
  first.send(updateFrom({ prefixes: ['10.244.7.0/24'] }));
  await expect.poll(prefixes).toEqual(['10.244.7.0/24']);
  expect(speaker.peerStates()).toMatchObject([{ state: 'established', negotiated: { peerRestartTime: 60 } }]);
  return first;
}

describe('a second connection from an established peer\'s address', () => {
  it('a bare TCP connection leaves the graceful-restart session up (nothing has proven the peer restarted)', async () => {
    const first = await established();
    const bare = await rawConnection(port);
    // The speaker answers a connection with its OPEN (RFC 4271 §8.2.2): by then it has judged it.
    await expect.poll(() => hasOpen(bare)).toBe(true);
    expect(speaker.peerStates()).toMatchObject([{ state: 'established' }]);
    expect(events.filter((e) => e.from === 'established')).toEqual([]);
    expect(speaker.stats().peers[0]!.stale).toBe(0);
    // The established connection still carries the session.
    first.send(updateFrom({ prefixes: ['10.244.8.0/24'] }));
    await expect.poll(prefixes).toEqual(['10.244.7.0/24', '10.244.8.0/24']);
    expect(first.socket.closed).toBe(false);
    bare.socket.destroy();
    first.socket.destroy();
  });

  it('an OPEN with another BGP identifier loses to the established session (Cease/7)', async () => {
    const first = await established();
    const other = await rawConnection(port);
    other.socket.write(openFrom({ ...OPEN, routerId: '9.9.9.9' }));
    await expect.poll(() => notifications(other)).toEqual(['6/7']);
    await closed(other);
    expect(speaker.peerStates()).toMatchObject([{ state: 'established', negotiated: { peerRouterId: '2.2.2.2' } }]);
    expect(events.filter((e) => e.from === 'established')).toEqual([]);
    expect(notifications(first)).toEqual([]);
    first.socket.destroy();
  });

  it('an OPEN with the same identifier from a graceful-restart peer replaces the session; the old routes stay, stale, until the new End-of-RIB', async () => {
    const first = await established();
    const firstClosed = closed(first);
    const second = await rawPeer(port, OPEN);
    await firstClosed;
    const downs = events.filter((e) => e.from === 'established');
    expect(downs).toHaveLength(1);
    expect(downs[0]).toMatchObject({ reason: expect.stringMatching(/peer restarted.*2\.2\.2\.2/), down: { gracefulRestartTime: 60 } });
    expect(downs[0]!.down!.notification).toBeUndefined();
    expect(notifications(first)).toEqual([]); // dropped, not told: a NOTIFICATION would end graceful restart
    await expect.poll(() => speaker.peerStates()[0]!.state).toBe('established');
    expect(prefixes()).toEqual(['10.244.7.0/24']);
    expect(speaker.stats().peers[0]!.stale).toBe(1);
    second.send(Buffer.concat([updateFrom({ prefixes: ['10.244.9.0/24'] }), encodeEndOfRib('ipv4-unicast')]));
    await expect.poll(prefixes).toEqual(['10.244.9.0/24']);
    second.socket.destroy();
  });

  it('at most two connections from the peer wait for their OPEN: a third closes the oldest silent one (Cease/5)', async () => {
    const waiting: RawConnection[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await rawConnection(port);
      await expect.poll(() => hasOpen(c)).toBe(true);
      waiting.push(c);
    }
    const [oldest, second, third] = waiting as [RawConnection, RawConnection, RawConnection];
    await closed(oldest);
    expect(notifications(oldest)).toEqual(['6/5']);
    expect(warnings).toEqual([expect.stringMatching(/closed a connection from 127\.0\.0\.2 still in opensent: a newer one came, and at most 2 may wait at once/)]);
    expect([second.socket.closed, third.socket.closed]).toEqual([false, false]);
    // The newest one still completes the session.
    third.socket.write(Buffer.concat([openFrom(OPEN), encodeKeepalive()]));
    await expect.poll(() => speaker.peerStates()[0]!.state).toBe('established');
    await closed(second); // superseded by the established connection (Cease/7)
    expect(notifications(second)).toEqual(['6/7']);
    third.socket.destroy();
  });
});
