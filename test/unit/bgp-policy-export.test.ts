import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import {
  ExportPolicy,
  NEXT_HOP_SELF,
  NO_ADVERTISE,
  NO_EXPORT,
  exportAllowed,
  exportAttributes,
  type ExportSource,
  type ExportTarget,
} from '../../src/bgp/policy/export-policy.js';
import type { Family, PathAttributes, Route } from '../../src/bgp/types.js';

const LOCAL: ExportSource = { local: true, ibgp: false };
const FROM_EBGP: ExportSource = { local: false, ibgp: false };
const FROM_IBGP: ExportSource = { local: false, ibgp: true, routerId: '10.255.0.3' };
const FROM_CLIENT: ExportSource = { local: false, ibgp: true, routeReflectorClient: true, routerId: '10.255.0.1' };

function target(ibgp: boolean, extra: Partial<ExportTarget> = {}): ExportTarget {
  return {
    local: false,
    ibgp,
    localAsn: 65000,
    clusterId: '192.168.0.100',
    localAddress: '192.168.0.10',
    families: ['ipv4-unicast', 'ipv6-unicast'],
    policy: new ExportPolicy(),
    ...extra,
  };
}
const EBGP_PEER = target(false);
const IBGP_PEER = target(true);
const CLIENT_PEER = target(true, { routeReflectorClient: true });

function route(prefix: string, attributes: Partial<PathAttributes> = {}, nextHop = '192.168.0.2'): Route {
  const family: Family = prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast';
  return { family, prefix, nextHop, attributes: { origin: 0, asPath: [{ type: 'sequence', asns: [65001] }], ...attributes } };
}
const local = (prefix: string, attributes: Partial<PathAttributes> = {}, nextHop = NEXT_HOP_SELF): Route => route(prefix, { asPath: [], ...attributes }, nextHop);

describe('export: who gets a route', () => {
  it.each<[string, ExportSource, ExportTarget, boolean]>([
    ['local to eBGP', LOCAL, EBGP_PEER, true],
    ['local to iBGP', LOCAL, IBGP_PEER, true],
    ['eBGP-learned to another eBGP peer', FROM_EBGP, EBGP_PEER, true],
    ['eBGP-learned to iBGP', FROM_EBGP, IBGP_PEER, true],
    ['iBGP-learned to eBGP', FROM_IBGP, EBGP_PEER, true],
    ['iBGP-learned to another iBGP peer: never (RFC 4271 §9.2, no reflection)', FROM_IBGP, IBGP_PEER, false],
  ])('%s: %s', (_name, source, to, expected) => {
    expect(exportAllowed('ipv4-unicast', '10.244.2.0/24', source, to)).toBe(expected);
  });

  it.each<[string, ExportSource, ExportTarget, boolean]>([
    ['client to another client', FROM_CLIENT, CLIENT_PEER, true],
    ['client to a non-client', FROM_CLIENT, IBGP_PEER, true],
    ['client to eBGP', FROM_CLIENT, EBGP_PEER, true],
    ['non-client to a client', FROM_IBGP, CLIENT_PEER, true],
    ['non-client to another non-client: never', FROM_IBGP, IBGP_PEER, false],
    ['eBGP-learned to a client', FROM_EBGP, CLIENT_PEER, true],
  ])('route reflection (RFC 4456 §6), %s', (_name, source, to, expected) => {
    expect(exportAllowed('ipv4-unicast', '10.244.2.0/24', source, to)).toBe(expected);
  });

  it('never back to the peer it came from', () => {
    const peer = target(false);
    expect(exportAllowed('ipv4-unicast', '10.244.2.0/24', peer, peer)).toBe(false);
  });

  it('only the families the peer negotiated', () => {
    const v4only = target(false, { families: ['ipv4-unicast'] });
    expect(exportAllowed('ipv6-unicast', 'fd00::/64', LOCAL, v4only)).toBe(false);
  });

  it('the announce filter limits what a peer gets', () => {
    const filtered = target(false, { policy: new ExportPolicy({ announce: ['10.244.0.0/16,ge=24'] }) });
    expect(exportAllowed('ipv4-unicast', '10.244.2.0/24', LOCAL, filtered)).toBe(true);
    expect(exportAllowed('ipv4-unicast', '10.1.0.0/16', LOCAL, filtered)).toBe(false);
  });
});

describe('export: outgoing attributes', () => {
  it('eBGP: prepend our AS, next hop self, no LOCAL_PREF, no MED learned from another AS', () => {
    const r = route('10.244.2.0/24', { localPref: 300, med: 50, communities: [1] });
    const out = exportAttributes(r, FROM_EBGP, EBGP_PEER)!;
    expect(out.attributes).toEqual({ origin: 0, asPath: [{ type: 'sequence', asns: [65000, 65001] }], nextHop: '192.168.0.10', communities: [1] });
    expect(out.nextHops).toEqual(['192.168.0.10']);
    expect(out.family).toBe('ipv4-unicast');
  });

  it('eBGP: an iBGP-learned route is prepended and loses MED, LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST', () => {
    const r = route('10.244.2.0/24', { asPath: [], med: 7, localPref: 200, originatorId: '1.1.1.1', clusterList: ['2.2.2.2'] });
    expect(exportAttributes(r, FROM_IBGP, EBGP_PEER)!.attributes).toEqual({ origin: 0, asPath: [{ type: 'sequence', asns: [65000] }], nextHop: '192.168.0.10' });
  });

  it('eBGP: our own MED goes out with a local route', () => {
    expect(exportAttributes(local('10.244.1.0/24', { med: 10 }), LOCAL, EBGP_PEER)!.attributes).toMatchObject({ med: 10, asPath: [{ type: 'sequence', asns: [65000] }] });
  });

  it('iBGP: no prepend, next hop unchanged for a learned route, LOCAL_PREF 100, MED kept inside the AS', () => {
    const out = exportAttributes(route('10.244.2.0/24', { med: 50, localPref: 999 }), FROM_EBGP, IBGP_PEER)!;
    expect(out.attributes).toEqual({ origin: 0, asPath: [{ type: 'sequence', asns: [65001] }], nextHop: '192.168.0.2', med: 50, localPref: 100 });
  });

  it('iBGP: next hop self for a local route; LOCAL_PREF as configured', () => {
    const peer = target(true, { policy: new ExportPolicy({ localPref: 250 }) });
    expect(exportAttributes(local('10.244.1.0/24'), LOCAL, peer)!.attributes).toEqual({ origin: 0, asPath: [], nextHop: '192.168.0.10', localPref: 250 });
  });

  it('a local advertisement that names its next hop keeps it, towards eBGP too', () => {
    expect(exportAttributes(local('10.244.1.0/24', {}, '192.168.0.99'), LOCAL, EBGP_PEER)!.nextHops).toEqual(['192.168.0.99']);
  });

  it('IPv6: the next hop travels in nextHops only; self needs an IPv6 address', () => {
    const v6session = target(false, { localAddress: 'fd00:1::10' });
    const out = exportAttributes(local('fd00:10:244:1::/64'), LOCAL, v6session)!;
    expect(out.attributes.nextHop).toBeUndefined();
    expect(out.nextHops).toEqual(['fd00:1::10']);
    // An IPv4 session has no IPv6 address of its own to give...
    expect(exportAttributes(local('fd00:10:244:1::/64'), LOCAL, EBGP_PEER)).toBeUndefined();
    // ...unless configured.
    const configured = target(false, { policy: new ExportPolicy({ nextHopSelf: { ipv6: 'FD00:1::10' } }) });
    expect(exportAttributes(local('fd00:10:244:1::/64'), LOCAL, configured)!.nextHops).toEqual(['fd00:1::10']);
  });

  it('RFC 1997: NO_ADVERTISE goes nowhere, NO_EXPORT stays inside the AS', () => {
    expect(exportAttributes(route('10.244.2.0/24', { communities: [NO_ADVERTISE] }), FROM_EBGP, IBGP_PEER)).toBeUndefined();
    expect(exportAttributes(route('10.244.2.0/24', { communities: [NO_EXPORT] }), FROM_EBGP, EBGP_PEER)).toBeUndefined();
    expect(exportAttributes(route('10.244.2.0/24', { communities: [NO_EXPORT] }), FROM_EBGP, IBGP_PEER)).toBeDefined();
  });

  it('RFC 4271 §5: unknown optional transitive attributes pass on with Partial set; non-transitive ones are dropped', () => {
    const value = Buffer.from([1, 2]);
    const r = route('10.244.2.0/24', {
      unknown: [
        { flags: 0xc0, type: 99, value },
        { flags: 0x80, type: 98, value },
      ],
    });
    expect(exportAttributes(r, FROM_EBGP, EBGP_PEER)!.attributes.unknown).toEqual([{ flags: 0xe0, type: 99, value }]);
  });

  it('equal outgoing attributes give equal keys; any difference gives another key', () => {
    const a = exportAttributes(route('10.244.2.0/24', { communities: [1] }), FROM_EBGP, EBGP_PEER)!;
    const b = exportAttributes(route('10.244.3.0/24', { communities: [1] }), FROM_EBGP, EBGP_PEER)!;
    const c = exportAttributes(route('10.244.3.0/24', { communities: [2] }), FROM_EBGP, EBGP_PEER)!;
    const d = exportAttributes(route('fd00:10:244:3::/64', { communities: [1] }), FROM_EBGP, target(false, { localAddress: '192.168.0.10', policy: new ExportPolicy({ nextHopSelf: { ipv6: 'fd00::1' } }) }))!;
    expect(a.key).toBe(b.key);
    expect(c.key).not.toBe(a.key);
    expect(d.key).not.toBe(a.key);
  });

  it('reflecting (RFC 4456 §8, §10): ORIGINATOR_ID of the sending peer, our cluster id in CLUSTER_LIST; NEXT_HOP, LOCAL_PREF, MED, AS_PATH unchanged', () => {
    const r = route('10.244.2.0/24', { asPath: [], med: 7, localPref: 300, communities: [5] }, '192.168.0.1');
    const out = exportAttributes(r, FROM_CLIENT, IBGP_PEER)!;
    expect(out.attributes).toEqual({
      origin: 0, asPath: [], nextHop: '192.168.0.1', med: 7, localPref: 300, communities: [5],
      originatorId: '10.255.0.1', clusterList: ['192.168.0.100'],
    });
    expect(out.nextHops).toEqual(['192.168.0.1']);
    // From a non-client to a client alike.
    expect(exportAttributes(r, FROM_IBGP, CLIENT_PEER)!.attributes).toMatchObject({ originatorId: '10.255.0.3', clusterList: ['192.168.0.100'] });
  });

  it('reflecting a reflected route keeps its ORIGINATOR_ID and prepends to its CLUSTER_LIST; a missing LOCAL_PREF goes out as 100', () => {
    const r = route('10.244.2.0/24', { asPath: [], originatorId: '10.255.0.9', clusterList: ['10.0.0.7'] });
    expect(exportAttributes(r, FROM_IBGP, CLIENT_PEER)!.attributes).toMatchObject({
      originatorId: '10.255.0.9', clusterList: ['192.168.0.100', '10.0.0.7'], localPref: 100,
    });
  });

  it('routes reflected for different originators get different keys (they must not share an UPDATE)', () => {
    const r = route('10.244.2.0/24', { asPath: [], localPref: 100 });
    const a = exportAttributes(r, FROM_CLIENT, IBGP_PEER)!;
    const b = exportAttributes(r, { ...FROM_CLIENT, routerId: '10.255.0.2' }, IBGP_PEER)!;
    const c = exportAttributes(route('10.244.2.0/24', { asPath: [], localPref: 100, clusterList: ['10.0.0.7'] }), FROM_CLIENT, IBGP_PEER)!;
    expect(new Set([a.key, b.key, c.key]).size).toBe(3);
  });

  it('checks its configuration', () => {
    expect(() => new ExportPolicy({ nextHopSelf: { ipv4: 'fd00::1' } })).toThrow(/wrong address family/);
    expect(() => new ExportPolicy({ localPref: -1 })).toThrow(InvalidArgumentError);
    expect(() => new ExportPolicy({ announce: ['10.0.0.1/8'] })).toThrow(/host bits/);
  });
});
