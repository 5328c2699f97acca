import { describe, expect, it } from 'vitest';
import { Speaker } from '../../src/bgp/index.js';
import { speakerPeerConfig } from '../../src/backends/bgp/builtin-driver.js';
import type { DriverOptions, DriverPeer } from '../../src/backends/bgp/driver.js';
import { settle, useLinkedSpeakers } from '../helpers/bgp-memory-transport.js';

// What the bgp backend asks of Twill's speaker per session (speakerPeerConfig), run between whole
// speakers on the in-memory network: host H peers with a ToR T (eBGP) and a mesh peer M (iBGP).
// H must announce exactly its own subnet to both: a route learned from the ToR must not leak
// into the mesh (issue 16, item 3), unless H is a route reflector.

const H = { address: '198.18.0.1', asn: 64512 };
const T = { address: '198.18.0.254', asn: 65000 };
const M = { address: '198.18.0.2', asn: 64512 };
const OWN = '10.244.1.0/24';

const options = (over: Partial<DriverOptions> = {}): DriverOptions => ({
  asn: H.asn, routerId: H.address, listen: { address: H.address, port: 179 }, localAddress: H.address, holdTimeS: 90, restartTimeS: 120,
  clusterNetwork: '10.244.0.0/16', ownSubnet: OWN, reflector: false, maxPrefixes: 10_000, restarted: false, ...over,
});
const peer = (address: string, asn: number, role: DriverPeer['role']): DriverPeer => ({ address, asn, role, password: undefined, port: 179, multihop: undefined });

const speakers = useLinkedSpeakers();
const { started } = speakers;

async function bed(over: Partial<DriverOptions> = {}, meshRole: DriverPeer['role'] = 'mesh'): Promise<{ h: Speaker; t: Speaker; m: Speaker }> {
  const opts = options(over);
  const h = await Speaker.start({ local: { asn: H.asn, routerId: H.address }, listen: [{ host: H.address, port: 179 }], transport: speakers.net.transport });
  started.push(h);
  h.addPeer({ ...speakerPeerConfig(peer(T.address, T.asn, 'external'), opts), passive: true });
  h.addPeer({ ...speakerPeerConfig(peer(M.address, M.asn, meshRole), opts), passive: true });
  const other = async (x: { address: string; asn: number }): Promise<Speaker> => {
    const s = await Speaker.start({ local: { asn: x.asn, routerId: x.address }, transport: speakers.net.transport, import: { accept: ['0.0.0.0/0,le=32'] } });
    started.push(s);
    s.addPeer({ address: H.address, asn: H.asn, localAddress: x.address });
    return s;
  };
  const [t, m] = [await other(T), await other(M)];
  await settle();
  expect(h.peerStates().map((p) => p.state)).toEqual(['established', 'established']);
  t.set([{ prefix: '10.244.50.0/24' }]);
  m.set([{ prefix: '10.244.2.0/24' }]);
  h.set([{ prefix: OWN, nextHop: H.address }]);
  await settle();
  return { h, t, m };
}

const learned = (s: Speaker): string[] => [...s.peerRoutes(H.address)].map((r) => r.prefix).sort();

describe('the bgp backend\'s sessions on Twill\'s speaker', () => {
  it('a host announces exactly its own subnet: nothing learned from the ToR reaches the mesh, nothing from the mesh the ToR', async () => {
    const { h, t, m } = await bed();
    expect([...h.peerRoutes(T.address)].map((r) => r.prefix)).toEqual(['10.244.50.0/24']);
    expect(learned(m)).toEqual([OWN]);
    expect(learned(t)).toEqual([OWN]);
  });

  it('a route reflector passes the other hosts\' subnets to its clients', async () => {
    const { m } = await bed({ reflector: true }, 'reflector-client');
    expect(learned(m)).toEqual(['10.244.1.0/24', '10.244.50.0/24']);
  });

  it('accepts only the cluster network and never the host\'s own subnet, at most maxPrefixes', () => {
    const config = speakerPeerConfig(peer(T.address, T.asn, 'external'), options({ maxPrefixes: 7 }));
    expect(config.import).toEqual({ accept: ['10.244.0.0/16,le=32'], rejectPrefixes: [OWN], maxPrefixes: 7 });
    expect(config).toMatchObject({ gracefulRestartTime: 120, localAddress: H.address, timers: { holdTime: 90 }, routeReflectorClient: false });
  });
});
