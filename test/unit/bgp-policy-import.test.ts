import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { DEFAULT_MAX_PREFIXES, ImportPolicy, reject, type ImportContext, type RejectReason } from '../../src/bgp/policy/import-policy.js';
import type { PathAttributes, Route } from '../../src/bgp/types.js';

const EBGP: ImportContext = { localAsn: 65000, routerId: '10.0.0.1', clusterId: '10.0.0.1', ibgp: false, localAddress: '10.0.0.10', ownAddresses: new Set(['10.0.0.11', 'fd00:1::10']) };
const IBGP: ImportContext = { ...EBGP, ibgp: true };

function route(prefix: string, attributes: Partial<PathAttributes> = {}, nextHop = '10.0.0.2'): Route {
  return {
    family: prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast',
    prefix,
    nextHop,
    attributes: { origin: 0, asPath: [{ type: 'sequence', asns: [65001] }], ...attributes },
  };
}

/** Twill's default shape: the cluster network between block size and host routes, minus our own block. */
const policy = new ImportPolicy({
  accept: ['10.244.0.0/16,ge=24,le=32', 'fd00:10:244::/48,ge=64,le=128', '0.0.0.0/0'],
  rejectPrefixes: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
  requireOnLinkNextHop: (nh) => nh.startsWith('10.0.0.') || nh.startsWith('fd00:1::'),
});

const reason = (r: Route, ctx: ImportContext = EBGP): RejectReason | 'accepted' => {
  const v = policy.evaluate(r, ctx);
  return v.accepted ? 'accepted' : v.reason;
};

describe('import policy', () => {
  it.each<[string, Route, ImportContext, RejectReason | 'accepted']>([
    ['a peer block inside the cluster network', route('10.244.2.0/24'), EBGP, 'accepted'],
    ['a host route inside it', route('10.244.2.7/32'), EBGP, 'accepted'],
    ['IPv6 block', route('fd00:10:244:2::/64', {}, 'fd00:1::2'), EBGP, 'accepted'],
    ['shorter than the block size', route('10.244.0.0/23'), EBGP, 'not-accepted'],
    ['outside the cluster network', route('192.168.7.0/24'), EBGP, 'not-accepted'],
    ['the default route, although accept lists it', route('0.0.0.0/0'), EBGP, 'default-route'],
    ['our own block', route('10.244.1.0/24'), EBGP, 'own-prefix'],
    ['a more-specific of our own block', route('10.244.1.128/25'), EBGP, 'own-prefix'],
    ['inside our own IPv6 block', route('fd00:10:244:1::5/128', {}, 'fd00:1::2'), EBGP, 'own-prefix'],
    ['host bits set', route('10.244.2.1/24'), EBGP, 'malformed-prefix'],
    ['family does not match the prefix', { ...route('10.244.2.0/24'), family: 'ipv6-unicast' }, EBGP, 'family-mismatch'],
    ['eBGP path with our AS (RFC 4271 §9.1.2)', route('10.244.2.0/24', { asPath: [{ type: 'sequence', asns: [65001, 65000, 65002] }] }), EBGP, 'as-loop'],
    ['our AS inside an AS_SET', route('10.244.2.0/24', { asPath: [{ type: 'sequence', asns: [65001] }, { type: 'set', asns: [65000] }] }), EBGP, 'as-loop'],
    ['iBGP, ORIGINATOR_ID is us (RFC 4456 §8)', route('10.244.2.0/24', { asPath: [], originatorId: '10.0.0.1' }), IBGP, 'originator-loop'],
    ['iBGP, our cluster id in CLUSTER_LIST', route('10.244.2.0/24', { asPath: [], clusterList: ['10.9.9.9', '10.0.0.1'] }), IBGP, 'cluster-loop'],
    ['iBGP, someone else reflected it', route('10.244.2.0/24', { asPath: [], originatorId: '10.0.0.7', clusterList: ['10.9.9.9'] }), IBGP, 'accepted'],
    ['next hop not on a link', route('10.244.2.0/24', {}, '172.16.0.1'), EBGP, 'next-hop-not-on-link'],
    // RFC 4271 §6.3: a NEXT_HOP that is the receiving speaker's own address is semantically wrong.
    ['next hop is our router id', route('10.244.2.0/24', {}, '10.0.0.1'), EBGP, 'own-next-hop'],
    ['next hop is our end of the session', route('10.244.2.0/24', {}, '10.0.0.10'), EBGP, 'own-next-hop'],
    ['next hop is another address of ours', route('10.244.2.0/24', {}, '10.0.0.11'), EBGP, 'own-next-hop'],
    ['IPv6 next hop is an address of ours', route('fd00:10:244:2::/64', {}, 'fd00:1::10'), EBGP, 'own-next-hop'],
    ['next hop in 127.0.0.0/8', route('10.244.2.0/24', {}, '127.0.0.1'), EBGP, 'loopback-next-hop'],
    ['next hop at the end of 127.0.0.0/8', route('10.244.2.0/24', {}, '127.255.255.254'), EBGP, 'loopback-next-hop'],
    ['IPv6 next hop ::1', route('fd00:10:244:2::/64', {}, '::1'), EBGP, 'loopback-next-hop'],
    ['a neighbour of ours as next hop (iBGP keeps next hops)', route('10.244.2.0/24', { asPath: [] }, '10.0.0.12'), IBGP, 'accepted'],
  ])('%s', (_name, r, ctx, expected) => {
    expect(reason(r, ctx)).toBe(expected);
  });

  it('accept empty accepts nothing', () => {
    const none = new ImportPolicy({ accept: [] });
    expect(none.evaluate(route('10.244.2.0/24'), EBGP)).toEqual({ accepted: false, reason: 'not-accepted' });
  });

  it('takes the default route only when told to', () => {
    const any = new ImportPolicy({ accept: ['0.0.0.0/0,le=32'], rejectDefaultRoute: false });
    expect(any.evaluate(route('0.0.0.0/0'), EBGP).accepted).toBe(true);
    expect(new ImportPolicy({ accept: ['0.0.0.0/0,le=32'] }).evaluate(route('0.0.0.0/0'), EBGP).accepted).toBe(false);
  });

  it('one policy serves several peers: the loop memo is per attributes object and context', () => {
    const attrs: PathAttributes = { origin: 0, asPath: [], originatorId: '10.0.0.1' };
    const r = route('10.244.2.0/24', attrs);
    expect(reason(r, EBGP)).toBe('accepted'); // ORIGINATOR_ID is an iBGP matter
    expect(reason(r, IBGP)).toBe('originator-loop');
    expect(reason(r, EBGP)).toBe('accepted');
  });

  it('asks the next-hop check again every time (links come and go)', () => {
    let up = true;
    const p = new ImportPolicy({ accept: ['10.244.0.0/16,le=32'], requireOnLinkNextHop: () => up });
    expect(p.evaluate(route('10.244.2.0/24'), EBGP).accepted).toBe(true);
    up = false;
    expect(p.evaluate(route('10.244.3.0/24'), EBGP)).toBe(reject('next-hop-not-on-link'));
  });

  it('checks its configuration', () => {
    expect(() => new ImportPolicy({ accept: ['10.244.0.0/16,le=8'] })).toThrow(InvalidArgumentError);
    expect(() => new ImportPolicy({ accept: [], rejectPrefixes: ['10.244.1.1/24'] })).toThrow(/host bits/);
    expect(() => new ImportPolicy({ accept: [], maxPrefixes: 0 })).toThrow(/positive integer/);
    expect(new ImportPolicy({ accept: [], maxPrefixes: 10 }).maxPrefixes).toBe(10);
  });

  it(`limits a peer to ${DEFAULT_MAX_PREFIXES} routes per family unless told otherwise`, () => {
    expect(DEFAULT_MAX_PREFIXES).toBe(10_000);
    expect(new ImportPolicy({ accept: [] }).maxPrefixes).toBe(DEFAULT_MAX_PREFIXES);
    expect(new ImportPolicy({ accept: [], maxPrefixes: 2_000_000 }).maxPrefixes).toBe(2_000_000);
  });

  it('allocates no verdicts: the same frozen objects come back', () => {
    const a = policy.evaluate(route('10.244.2.0/24'), EBGP);
    expect(policy.evaluate(route('10.244.3.0/24'), EBGP)).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(policy.evaluate(route('0.0.0.0/0'), EBGP)).toBe(reject('default-route'));
  });
});
