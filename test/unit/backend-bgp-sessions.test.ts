import { describe, expect, it } from 'vitest';
import { parseBgpOptions, parsePeerFlag } from '../../src/backends/bgp/config.js';
import { planSessions, type PlannedSession } from '../../src/backends/bgp/sessions.js';

const hosts = ['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4'];
const brief = (s: readonly PlannedSession[]): string[] => s.map((x) => `${x.address} ${x.asn} ${x.role}`);

describe('bgp sessions a host wants', () => {
  it('mesh: every other leased host, iBGP in the cluster ASN; a host that leaves drops out', () => {
    const options = parseBgpOptions({});
    expect(brief(planSessions({ options, self: '198.18.0.2', asn: 64512, hosts, hostPeers: [] })))
      .toEqual(['198.18.0.1 64512 mesh', '198.18.0.3 64512 mesh', '198.18.0.4 64512 mesh']);
    expect(brief(planSessions({ options, self: '198.18.0.2', asn: 64512, hosts: hosts.slice(0, 2), hostPeers: [] }))).toEqual(['198.18.0.1 64512 mesh']);
  });

  it('route reflectors: clients peer with the reflectors only; a reflector with everyone, the other reflectors as non-clients', () => {
    const options = parseBgpOptions({ RouteReflectors: ['198.18.0.1', '198.18.0.2'] });
    expect(brief(planSessions({ options, self: '198.18.0.4', asn: 64512, hosts, hostPeers: [] })))
      .toEqual(['198.18.0.1 64512 reflector', '198.18.0.2 64512 reflector']);
    expect(brief(planSessions({ options, self: '198.18.0.1', asn: 64512, hosts, hostPeers: [] })))
      .toEqual(['198.18.0.2 64512 reflector', '198.18.0.3 64512 reflector-client', '198.18.0.4 64512 reflector-client']);
    // A reflector that holds no lease right now (restarting) is still peered with.
    expect(brief(planSessions({ options, self: '198.18.0.4', asn: 64512, hosts: ['198.18.0.3', '198.18.0.4'], hostPeers: [] })))
      .toEqual(['198.18.0.1 64512 reflector', '198.18.0.2 64512 reflector']);
  });

  it('no mesh: only external peers; the host\'s --bgp-peer wins over the cluster\'s Peers for one address, and never replaces a host session', () => {
    const options = parseBgpOptions({ Mesh: false, Peers: [{ Address: '198.18.0.254', ASN: 65000 }, { Address: '198.18.9.9', ASN: 65009 }] });
    const tor = parsePeerFlag('198.18.0.254,asn=65100,password=s3cret,multihop=2');
    const plan = planSessions({ options, self: '198.18.0.1', asn: 65001, hosts, hostPeers: [tor] });
    expect(brief(plan)).toEqual(['198.18.0.254 65100 external', '198.18.9.9 65009 external']);
    expect(plan[0]).toMatchObject({ password: 's3cret', multihop: 2, port: 179 });
    const meshed = planSessions({ options: parseBgpOptions({}), self: '198.18.0.1', asn: 64512, hosts, hostPeers: [parsePeerFlag('198.18.0.2,asn=65002'), parsePeerFlag('198.18.0.1,asn=65001')] });
    expect(brief(meshed)).toEqual(['198.18.0.2 64512 mesh', '198.18.0.3 64512 mesh', '198.18.0.4 64512 mesh']);
  });
});
