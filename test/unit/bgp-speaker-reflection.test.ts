import { describe, expect, it } from 'vitest';
import { Speaker, type PeerRoutesEvent, type Route, type SpeakerPeerConfig } from '../../src/bgp/index.js';
import { encodeKeepalive } from '../../src/bgp/wire/index.js';
import { settle, useLinkedSpeakers } from '../helpers/bgp-memory-transport.js';
import { openFrom, updateFrom } from '../helpers/bgp-scripted-peer.js';

// Route reflection (RFC 4456) between whole speakers on one in-memory network (MemoryNetwork
// with linkSpeakers): a reflector R, its clients A and B, non-clients C and D (iBGP, AS 65000),
// and an eBGP peer E (AS 65100). Each speaker dials R from its own address; R listens.
//
//          A (client)   B (client)
//                \       /
//   C (non-client) ─ R ─ D (non-client)
//                    |
//                    E (eBGP)

const AS = 65000;
const R = { address: '198.18.0.10', routerId: '10.255.0.10' };
/** Router ids differ from the addresses, so ORIGINATOR_ID (a router id) and NEXT_HOP (an address) are told apart. */
const NODES = {
  A: { address: '198.18.0.1', routerId: '10.255.0.1', client: true },
  B: { address: '198.18.0.2', routerId: '10.255.0.2', client: true },
  C: { address: '198.18.0.3', routerId: '10.255.0.3', client: false },
  D: { address: '198.18.0.4', routerId: '10.255.0.4', client: false },
} as const;
type Node = keyof typeof NODES;
const E = { address: '198.18.0.5', routerId: '10.255.0.5', asn: 65100 };
const IMPORT = { accept: ['10.244.0.0/16,le=32'] };

const bed = useLinkedSpeakers();
const { started } = bed;

async function speaker(local: { asn: number; routerId: string; clusterId?: string }, listen?: string): Promise<Speaker> {
  const s = await Speaker.start({ local, transport: bed.net.transport, import: IMPORT, ...(listen !== undefined && { listen: [{ host: listen, port: 179 }] }) });
  started.push(s);
  return s;
}

/** A speaker at `address` with one session, to the reflector at `to`. */
async function peerOf(to: string, address: string, routerId: string, asn = AS, config: Partial<SpeakerPeerConfig> = {}): Promise<Speaker> {
  const s = await speaker({ asn, routerId });
  s.addPeer({ address: to, asn: AS, localAddress: address, ...config });
  return s;
}

/** R with A, B, C, D and E, every session established. */
async function topology(): Promise<{ r: Speaker } & Record<Node | 'E', Speaker>> {
  const r = await speaker({ asn: AS, routerId: R.routerId }, R.address);
  for (const n of Object.values(NODES)) r.addPeer({ address: n.address, asn: AS, passive: true, routeReflectorClient: n.client });
  r.addPeer({ address: E.address, asn: E.asn, passive: true });
  const nodes = {} as Record<Node | 'E', Speaker>;
  for (const [name, n] of Object.entries(NODES) as [Node, (typeof NODES)[Node]][]) {
    // A sends LOCAL_PREF 200: a reflector must pass it on unchanged.
    nodes[name] = await peerOf(R.address, n.address, n.routerId, AS, name === 'A' ? { export: { localPref: 200 } } : {});
  }
  nodes.E = await peerOf(R.address, E.address, E.routerId, E.asn);
  await settle();
  expect(r.peerStates().map((p) => p.state)).toEqual(Array(5).fill('established'));
  return { r, ...nodes };
}

const fromR = (s: Speaker): Route[] => [...s.peerRoutes(R.address)];
const prefixes = (s: Speaker): string[] => fromR(s).map((r) => r.prefix).sort();

describe('route reflection (RFC 4456)', () => {
  it('reflects a client\'s route to the other client, to non-clients and to eBGP; never back to the client', async () => {
    const t = await topology();
    t.A.set([{ prefix: '10.244.1.0/24' }]);
    await settle();
    for (const name of ['B', 'C', 'D'] as const) {
      expect(fromR(t[name]), name).toEqual([{
        family: 'ipv4-unicast', prefix: '10.244.1.0/24',
        // NEXT_HOP and LOCAL_PREF as A sent them; ORIGINATOR_ID A's router id; R's cluster id (its router id).
        nextHop: NODES.A.address,
        attributes: { origin: 0, asPath: [], nextHop: NODES.A.address, localPref: 200, originatorId: NODES.A.routerId, clusterList: [R.routerId] },
      }]);
    }
    // eBGP: as any iBGP-learned route, with R's AS and next hop, without the reflection attributes.
    expect(fromR(t.E)).toEqual([{
      family: 'ipv4-unicast', prefix: '10.244.1.0/24', nextHop: R.address,
      attributes: { origin: 0, asPath: [{ type: 'sequence', asns: [AS] }], nextHop: R.address },
    }]);
    expect(prefixes(t.A)).toEqual([]);

    t.A.set([]);
    await settle();
    for (const name of ['B', 'C', 'D', 'E'] as const) expect(prefixes(t[name]), name).toEqual([]);
  });

  it('reflects a non-client\'s route to the clients only (and to eBGP), not to the other non-client', async () => {
    const t = await topology();
    t.C.set([{ prefix: '10.244.3.0/24' }]);
    await settle();
    for (const name of ['A', 'B'] as const) {
      expect(fromR(t[name]), name).toMatchObject([{ prefix: '10.244.3.0/24', nextHop: NODES.C.address, attributes: { originatorId: NODES.C.routerId, clusterList: [R.routerId], localPref: 100 } }]);
    }
    expect(prefixes(t.D)).toEqual([]);
    expect(prefixes(t.E)).toEqual(['10.244.3.0/24']);
  });

  it('reflects nothing without clients: iBGP-learned routes go to eBGP peers only, as before', async () => {
    const r = await speaker({ asn: AS, routerId: R.routerId }, R.address);
    r.addPeer({ address: NODES.C.address, asn: AS, passive: true });
    r.addPeer({ address: NODES.D.address, asn: AS, passive: true });
    r.addPeer({ address: E.address, asn: E.asn, passive: true });
    const c = await peerOf(R.address, NODES.C.address, NODES.C.routerId);
    const d = await peerOf(R.address, NODES.D.address, NODES.D.routerId);
    const e = await peerOf(R.address, E.address, E.routerId, E.asn);
    c.set([{ prefix: '10.244.3.0/24' }]);
    await settle();
    expect(prefixes(d)).toEqual([]);
    expect(fromR(e)).toMatchObject([{ prefix: '10.244.3.0/24', attributes: { asPath: [{ asns: [AS] }] } }]);
    expect(fromR(e)[0]!.attributes).not.toHaveProperty('originatorId');
  });

  it('refuses reflected routes that looped: its cluster id in CLUSTER_LIST (two reflectors of one cluster), its router id as ORIGINATOR_ID', async () => {
    // R1 and R2 serve cluster 10.0.0.1 and are each other's non-client peers; client A peers with both.
    const cluster = '10.0.0.1';
    const r1 = await speaker({ asn: AS, routerId: '10.255.0.11', clusterId: cluster }, '198.18.0.11');
    const r2 = await speaker({ asn: AS, routerId: '10.255.0.12', clusterId: cluster }, '198.18.0.12');
    r1.addPeer({ address: NODES.A.address, asn: AS, passive: true, routeReflectorClient: true });
    r2.addPeer({ address: NODES.A.address, asn: AS, passive: true, routeReflectorClient: true });
    r2.addPeer({ address: '198.18.0.11', asn: AS, passive: true });
    r1.addPeer({ address: '198.18.0.12', asn: AS, localAddress: '198.18.0.11' });
    const a = await speaker({ asn: AS, routerId: NODES.A.routerId });
    a.addPeer({ address: '198.18.0.11', asn: AS, localAddress: NODES.A.address });
    a.addPeer({ address: '198.18.0.12', asn: AS, localAddress: NODES.A.address });
    const rejected: PeerRoutesEvent['rejected'][number][] = [];
    r2.on('routes', (ev) => rejected.push(...ev.rejected));
    await settle();
    expect([r1, r2, a].flatMap((s) => s.peerStates().map((p) => p.state))).toEqual(Array(6).fill('established'));
    a.set([{ prefix: '10.244.1.0/24' }]);
    await settle();
    // R1 reflected A's route to R2 with CLUSTER_LIST [10.0.0.1]: R2 refuses it, and keeps A's own.
    expect(rejected).toMatchObject([{ route: { prefix: '10.244.1.0/24', attributes: { originatorId: NODES.A.routerId, clusterList: [cluster] } }, reason: 'cluster-loop' }]);
    expect([...r2.peerRoutes('198.18.0.11')]).toEqual([]);
    expect([...r2.peerRoutes(NODES.A.address)].map((r) => r.prefix)).toEqual(['10.244.1.0/24']);

    // A route naming R2 itself as its originator has come back to it (a scripted peer C sends it).
    r2.addPeer({ address: NODES.C.address, asn: AS, passive: true });
    const c = bed.net.dial(NODES.C.address, '198.18.0.12');
    c.send(Buffer.concat([openFrom({ asn: AS, holdTime: 30, routerId: NODES.C.routerId }), encodeKeepalive()]));
    c.send(updateFrom({ prefixes: ['10.244.3.0/24'], asPath: [], nextHop: NODES.C.address, attributes: { localPref: 100, originatorId: '10.255.0.12' } }));
    await settle();
    expect(rejected.at(-1)).toMatchObject({ route: { prefix: '10.244.3.0/24' }, reason: 'originator-loop' });
  });

  it('takes route reflector clients only among iBGP peers', async () => {
    const r = await speaker({ asn: AS, routerId: R.routerId }, R.address);
    expect(() => r.addPeer({ address: E.address, asn: E.asn, routeReflectorClient: true })).toThrow(/iBGP peer/);
    await expect(Speaker.start({ local: { asn: AS, routerId: R.routerId, clusterId: 'cluster-1' } })).rejects.toThrow(/cluster id/);
  });
});
