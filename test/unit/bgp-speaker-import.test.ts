import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Speaker, type PeerRoutesEvent, type SpeakerPeerConfig } from '../../src/bgp/index.js';
import { MessageType } from '../../src/bgp/types.js';
import { encodeKeepalive } from '../../src/bgp/wire/index.js';
import { MemoryNetwork, settle, type MemoryEnd } from '../helpers/bgp-memory-transport.js';
import { openFrom, updateFrom } from '../helpers/bgp-scripted-peer.js';

// What the speaker takes from a peer, end to end (UPDATE in, RIB and events out), over the
// in-memory transport: next hops it must ignore (RFC 4271 §5.1.3, §6.3) and the default limit on
// how many routes one peer may give it.

const PEER = '198.18.0.2';
/** The speaker's addresses: router id, listen address (= the session's own end), another session's configured local address. */
const OWN = { routerId: '198.18.0.100', listen: '198.18.0.1', otherLocal: '198.18.1.1' };
/** The documented default max-prefix (README, `twillctl bgp serve --help`). */
const DEFAULT_MAX_PREFIXES = 10_000;

let net: MemoryNetwork;
let speaker: Speaker;
let routes: PeerRoutesEvent[];

beforeEach(async () => {
  net = new MemoryNetwork();
  speaker = await Speaker.start({
    local: { asn: 65001, routerId: OWN.routerId }, listen: [{ host: OWN.listen, port: 179 }], transport: net.transport,
    import: { accept: ['10.0.0.0/8,le=32', 'fd00:10:244::/48,le=128'] },
  });
  routes = [];
  speaker.on('routes', (ev) => routes.push(ev));
  speaker.addPeer({ address: '198.18.1.2', asn: 65003, passive: true, localAddress: OWN.otherLocal });
});

afterEach(async () => {
  await speaker.close();
});

async function established(config: Partial<SpeakerPeerConfig> = {}): Promise<MemoryEnd> {
  speaker.addPeer({ address: PEER, asn: 65002, passive: true, families: ['ipv4-unicast', 'ipv6-unicast'], ...config });
  const end = net.dial(PEER);
  end.send(Buffer.concat([openFrom({ asn: 65002, holdTime: 90, families: ['ipv4-unicast', 'ipv6-unicast'] }), encodeKeepalive()]));
  await settle();
  expect(speaker.peerStates().find((p) => p.address === PEER)?.state).toBe('established');
  return end;
}

const held = (): string[] => [...speaker.peerRoutes(PEER)].map((r) => `${r.prefix} via ${r.nextHop}`);
const rejected = (): string[] => routes.flatMap((ev) => ev.rejected.map((j) => `${j.route.prefix} ${j.reason}`));

describe('routes the speaker must not take', () => {
  it('ignores a route whose NEXT_HOP is one of its own addresses or loopback, counts it, and keeps the session', async () => {
    const peer = await established();
    peer.send(Buffer.concat([
      updateFrom({ prefixes: ['10.244.1.0/24'] }), // via the peer itself: fine
      updateFrom({ prefixes: ['10.244.2.0/24'], nextHop: OWN.listen }),
      updateFrom({ prefixes: ['10.244.3.0/24'], nextHop: OWN.routerId }),
      updateFrom({ prefixes: ['10.244.4.0/24'], nextHop: OWN.otherLocal }),
      updateFrom({ prefixes: ['10.244.5.0/24'], nextHop: '127.0.0.1' }),
      updateFrom({ prefixes: ['10.244.6.0/24'], nextHop: '127.255.255.254' }),
      updateFrom({ family: 'ipv6-unicast', prefixes: ['fd00:10:244:7::/64'], nextHop: '::1' }),
    ]));
    await settle();
    expect(held()).toEqual(['10.244.1.0/24 via 198.18.0.2']);
    expect(rejected()).toEqual([
      '10.244.2.0/24 own-next-hop', '10.244.3.0/24 own-next-hop', '10.244.4.0/24 own-next-hop',
      '10.244.5.0/24 loopback-next-hop', '10.244.6.0/24 loopback-next-hop', 'fd00:10:244:7::/64 loopback-next-hop',
    ]);
    expect([...speaker.bestRoutes()].map((b) => b.route.prefix)).toEqual(['10.244.1.0/24']);
    expect(speaker.stats().peers.find((p) => p.peerId === PEER)).toMatchObject({ rejected: 6 });
    // RFC 4271 §6.3: no NOTIFICATION, the session stays.
    expect(peer.received.filter((m) => m.type === MessageType.NOTIFICATION)).toEqual([]);
    expect(speaker.peerStates().find((p) => p.address === PEER)?.state).toBe('established');

    // Re-announced with an unusable next hop, a route is gone: the new announcement replaces the old.
    peer.send(updateFrom({ prefixes: ['10.244.1.0/24'], nextHop: '127.0.0.1' }));
    await settle();
    expect(held()).toEqual([]);
    expect(routes.at(-1)).toMatchObject({ withdrawn: [{ prefix: '10.244.1.0/24' }], rejected: [{ reason: 'loopback-next-hop' }] });
  });

  it(`limits a peer to ${DEFAULT_MAX_PREFIXES} routes per family when no max-prefix is configured (Cease/1 beyond)`, async () => {
    const peer = await established();
    const hostRoutes = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `10.0.${(from + i) >> 8}.${(from + i) & 255}/32`);
    peer.send(updateFrom({ prefixes: hostRoutes(0, DEFAULT_MAX_PREFIXES) }));
    await settle();
    expect(speaker.stats().peers.find((p) => p.peerId === PEER)?.received['ipv4-unicast']).toBe(DEFAULT_MAX_PREFIXES);
    expect(peer.received.filter((m) => m.type === MessageType.NOTIFICATION)).toEqual([]);
    peer.send(updateFrom({ prefixes: hostRoutes(DEFAULT_MAX_PREFIXES, 1) }));
    await settle();
    expect(peer.received.filter((m) => m.type === MessageType.NOTIFICATION)).toMatchObject([{ code: 6, subcode: 1 }]);
    expect(speaker.peerStates().find((p) => p.address === PEER)?.state).not.toBe('established');
    expect(held()).toEqual([]);
  });

  it('takes more when max-prefix says so', async () => {
    const peer = await established({ import: { accept: ['10.0.0.0/8,le=32'], maxPrefixes: DEFAULT_MAX_PREFIXES + 1 } });
    peer.send(updateFrom({ prefixes: Array.from({ length: DEFAULT_MAX_PREFIXES + 1 }, (_, i) => `10.1.${i >> 8}.${i & 255}/32`) }));
    await settle();
    expect(held()).toHaveLength(DEFAULT_MAX_PREFIXES + 1);
    expect(speaker.peerStates().find((p) => p.address === PEER)?.state).toBe('established');
  });
});
