import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Speaker, type SpeakerPeerState } from '../../src/bgp/index.js';
import { CeaseSubcode, encodeKeepalive, encodeNotification, NotificationCode } from '../../src/bgp/wire/index.js';
import { MemoryNetwork, settle, type MemoryEnd } from '../helpers/bgp-memory-transport.js';
import { openFrom, updateFrom, withdrawalFrom, type OpenOptions } from '../helpers/bgp-scripted-peer.js';

// What Speaker.peerStates() tells an operator about each peer: since when it is up, what last
// went wrong, how many routes it gave us and how many we give it. In-memory transport, fake time.

const PEER = '198.18.0.2';
const ACTIVE_PEER = '198.18.0.3';
const OPEN: OpenOptions = { asn: 65002, holdTime: 30 };
const T0 = Date.UTC(2030, 0, 1);

let net: MemoryNetwork;
let speaker: Speaker;

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  vi.setSystemTime(T0);
  net = new MemoryNetwork();
  speaker = await Speaker.start({
    local: { asn: 65001, routerId: '198.18.0.1' }, listen: [{ host: '198.18.0.1', port: 179 }], transport: net.transport,
    import: { accept: ['10.244.0.0/16,le=32'] },
  });
  speaker.set([{ prefix: '10.244.1.0/24' }, { prefix: '10.244.11.0/24' }]);
  speaker.addPeer({ address: PEER, asn: 65002, passive: true });
});

afterEach(async () => {
  await speaker.close();
  vi.useRealTimers();
});

const status = (address = PEER): SpeakerPeerState => speaker.peerStates().find((p) => p.address === address)!;

async function connect(open: OpenOptions = OPEN): Promise<MemoryEnd> {
  const end = net.dial(PEER);
  end.send(Buffer.concat([openFrom(open), encodeKeepalive()]));
  await settle();
  expect(status().state).toBe('established');
  return end;
}

describe('Speaker.peerStates()', () => {
  it('an established session: since when, routes received and prefixes sent, nothing gone wrong', async () => {
    expect(status()).toMatchObject({ state: 'active', establishedAt: undefined, lastError: undefined, received: 0, sent: 0 });
    vi.setSystemTime(T0 + 5000);
    const end = await connect();
    expect(status()).toMatchObject({ address: PEER, asn: 65002, establishedAt: T0 + 5000, lastError: undefined, received: 0, sent: 2 });
    end.send(updateFrom({ prefixes: ['10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24'] }));
    await settle();
    expect(status()).toMatchObject({ received: 3, sent: 2 });
    end.send(withdrawalFrom(['10.244.4.0/24']));
    speaker.set([{ prefix: '10.244.1.0/24' }]);
    await settle();
    expect(status()).toMatchObject({ received: 2, sent: 1 });
  });

  it('a NOTIFICATION received: its text is the last error, kept when the session is back', async () => {
    const end = await connect();
    end.send(encodeNotification(NotificationCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, { shutdownText: 'maintenance' }));
    await settle();
    expect(status()).toMatchObject({ state: 'active', establishedAt: undefined, lastError: 'NOTIFICATION 6/2 received: "maintenance"', received: 0, sent: 0 });
    vi.setSystemTime(T0 + 60_000);
    await connect();
    expect(status()).toMatchObject({ establishedAt: T0 + 60_000, lastError: 'NOTIFICATION 6/2 received: "maintenance"', sent: 2 });
  });

  it('a connection the peer closed: a graceful-restart peer\'s stale routes still count as received; nothing is sent', async () => {
    const end = await connect({ ...OPEN, gracefulRestart: 60 });
    end.send(updateFrom({ prefixes: ['10.244.2.0/24'] }));
    await settle();
    end.reset();
    await settle();
    expect(status()).toMatchObject({ state: 'active', lastError: 'connection closed by the peer', received: 1, sent: 0 });
  });

  it('the NOTIFICATIONs it sent: hold timer expired, an OPEN it refused', async () => {
    await connect();
    vi.advanceTimersByTime(31_000);
    await settle();
    expect(status().lastError).toBe('NOTIFICATION 4/0 sent: hold timer expired (30 s without a message)');
    const wrong = net.dial(PEER);
    wrong.send(openFrom({ ...OPEN, asn: 65099 }));
    await settle();
    expect(status().lastError).toBe(`NOTIFICATION 2/2 sent: peer ${PEER} says it is AS 65099, configured AS 65002`);
  });

  it('a failed connect of an active session', async () => {
    speaker.addPeer({ address: ACTIVE_PEER, asn: 65003 });
    net.answer(net.pendingDials[0]!, false);
    await settle();
    expect(status(ACTIVE_PEER)).toMatchObject({ state: 'active', lastError: `connect to ${ACTIVE_PEER}:179 failed: connect ECONNREFUSED ${ACTIVE_PEER}:179` });
  });

  it('collision resolution (Cease/7) is routine, not an error', async () => {
    const end = await connect();
    const second = net.dial(PEER);
    second.send(openFrom(OPEN)); // same BGP identifier as the established session, no graceful restart: refused with Cease/7
    await settle();
    expect(second.received.some((m) => m.type === 3 && m.code === 6 && m.subcode === 7)).toBe(true);
    expect(status()).toMatchObject({ state: 'established', lastError: undefined });
    end.reset();
  });
});
