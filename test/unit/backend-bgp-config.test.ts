import { describe, expect, it } from 'vitest';
import { DEFAULT_ASN, parseBgpOptions, parseListenFlag, parsePeer, parsePeerFlag } from '../../src/backends/bgp/config.js';

describe('bgp backend options', () => {
  it('defaults to ASN 64512, a full mesh, hold time 90 s, graceful restart and the built-in speaker', () => {
    expect(parseBgpOptions({})).toEqual({
      asn: DEFAULT_ASN, mesh: true, routeReflectors: [], peers: [], holdTimeS: 90, gracefulRestart: true, speaker: 'builtin',
    });
  });

  it('reads every option case-insensitively; route reflectors turn the mesh off', () => {
    const o = parseBgpOptions({
      asn: 4200000001, holdtime: 30, GRACEFULRESTART: false, speaker: 'GoBGP', routereflectors: ['198.18.0.1', '198.18.0.2'],
      Peers: [{ address: '198.18.0.254', asn: 65000, password: 's3cret', port: 1179, multihop: 2 }, { Address: '198.18.1.254', ASN: 65001 }],
    });
    expect(o).toEqual({
      asn: 4200000001, mesh: false, routeReflectors: ['198.18.0.1', '198.18.0.2'], holdTimeS: 30, gracefulRestart: false, speaker: 'gobgp',
      peers: [
        { address: '198.18.0.254', asn: 65000, password: 's3cret', port: 1179, multihop: 2 },
        { address: '198.18.1.254', asn: 65001, password: undefined, port: 179, multihop: undefined },
      ],
    });
    expect(parseBgpOptions({ Mesh: false }).mesh).toBe(false);
    expect(parseBgpOptions({ HoldTime: 0 }).holdTimeS).toBe(0);
  });

  it('refuses what it cannot honour, naming the option and never echoing a password', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ VNI: 1 }, /bgp backend option "VNI": is not an option of the bgp backend \(known: ASN, Mesh, RouteReflectors, Peers, HoldTime, GracefulRestart, Speaker\)/],
      [{ ASN: 0 }, /bgp backend option ASN.*must be an AS number 1\.\.4294967294/],
      [{ ASN: 23456 }, /AS_TRANS/],
      [{ ASN: '64512' }, /bgp backend option ASN/],
      [{ HoldTime: 2 }, /HoldTime.*0 or at least 3 seconds/],
      [{ HoldTime: 70000 }, /HoldTime.*0\.\.65535/],
      [{ Mesh: true, RouteReflectors: ['198.18.0.1'] }, /Mesh.*cannot be true together with RouteReflectors/],
      [{ RouteReflectors: '198.18.0.1' }, /RouteReflectors.*must be a list/],
      [{ RouteReflectors: ['198.18.0.1', '198.18.0.1'] }, /RouteReflectors\[1\].*listed twice/],
      [{ RouteReflectors: ['fd00::1'] }, /RouteReflectors\[0\].*IPv4/],
      [{ Peers: [{ Address: '198.18.0.254' }] }, /Peers\[0\]\.ASN.*required/],
      [{ Peers: [{ ASN: 65000 }] }, /Peers\[0\]\.Address.*required/],
      [{ Peers: [{ Address: 'tor1', ASN: 65000 }] }, /Peers\[0\]\.Address.*IPv4/],
      [{ Peers: [{ Address: '198.18.0.254', ASN: 65000, Port: 0 }] }, /Peers\[0\]\.Port.*1\.\.65535/],
      [{ Peers: [{ Address: '198.18.0.254', ASN: 65000, Multihop: 256 }] }, /Peers\[0\]\.Multihop.*1\.\.255/],
      [{ Peers: [{ Address: '198.18.0.254', ASN: 65000, TTL: 2 }] }, /Peers\[0\]\.TTL.*not a peer setting/],
      [{ Peers: [{ Address: '198.18.0.254', ASN: 65000 }, { Address: '198.18.0.254', ASN: 65001 }] }, /Peers\[1\]\.Address.*listed twice/],
      [{ Speaker: 'bird' }, /Speaker.*"builtin", "gobgp"/],
    ];
    for (const [raw, message] of cases) expect(() => parseBgpOptions(raw), JSON.stringify(raw)).toThrow(message);
    const secret = 'x'.repeat(81);
    const err = (() => { try { parsePeer({ Address: '198.18.0.254', ASN: 65000, Password: secret }, 'Peers[0]'); } catch (e) { return e as Error; } return undefined; })();
    expect(err?.message).toMatch(/Peers\[0\]\.Password.*1\.\.80 bytes/);
    expect(err?.message).not.toContain(secret);
  });
});

describe('bgp per-host flags', () => {
  it('reads --bgp-peer as a Peers entry, with the same checks (a password may hold "=" but not ",")', () => {
    expect(parsePeerFlag('198.18.0.254,asn=65000')).toEqual({ address: '198.18.0.254', asn: 65000, password: undefined, port: 179, multihop: undefined });
    expect(parsePeerFlag('198.18.0.254,asn=4200000000,password=p=q,port=1179,multihop=3')).toEqual({ address: '198.18.0.254', asn: 4200000000, password: 'p=q', port: 1179, multihop: 3 });
    expect(() => parsePeerFlag('198.18.0.254')).toThrow(/--bgp-peer\.ASN.*required/);
    expect(() => parsePeerFlag('198.18.0.254,asn=65000,asn=65001')).toThrow(/--bgp-peer.*each setting once/);
    expect(() => parsePeerFlag('198.18.0.254,as=65000')).toThrow(/--bgp-peer.*ADDR,asn=N/);
    expect(() => parsePeerFlag(',asn=65000')).toThrow(/--bgp-peer\.Address.*required/);
    expect(() => parsePeerFlag('198.18.0.254,asn=65000,port=x')).toThrow(/--bgp-peer\.Port/);
    const err = (() => { try { parsePeerFlag('198.18.0.254,asn=65000,password=hunter2,password=hunter3'); } catch (e) { return (e as Error).message; } return ''; })();
    expect(err).toMatch(/each setting once/);
    expect(err).not.toMatch(/hunter/);
  });

  it('reads --bgp-listen ADDR:PORT', () => {
    expect(parseListenFlag('198.18.0.1:179')).toEqual({ address: '198.18.0.1', port: 179 });
    for (const bad of ['198.18.0.1', '198.18.0.1:0', 'tor:179', '198.18.0.1:x']) expect(() => parseListenFlag(bad), bad).toThrow(/--bgp-listen/);
  });
});
