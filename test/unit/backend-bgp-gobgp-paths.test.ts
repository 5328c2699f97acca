import { describe, expect, it } from 'vitest';
import type { MethodDefinition } from '@grpc/grpc-js';
import { ANY, type Path } from '../../src/backends/bgp/gobgp/api.js';
import { gobgpDefinition } from '../../src/backends/bgp/gobgp/client.js';
import { learnedPath, neighborOf, ownPath, ownRoute, ownRouteOf, prefixOf } from '../../src/backends/bgp/gobgp/paths.js';

/** A path as gobgpd 3.10 sends it in a WatchEvent ADJIN event or ListPath(ADJ_IN) (captured, trimmed). */
function received(overrides: Partial<Path> = {}): Path {
  return {
    nlri: { '@type': ANY.ipAddressPrefix, prefix: '10.244.1.0', prefix_len: 24 },
    pattrs: [
      { '@type': ANY.origin, origin: 2 },
      { '@type': ANY.asPath, segments: [{ type: 'AS_SEQUENCE', numbers: [65002, 65010] }, { type: 'AS_SET', numbers: [1, 2, 3] }, { type: 'AS_CONFED_SEQUENCE', numbers: [7] }] },
      { '@type': ANY.nextHop, next_hop: '198.18.50.2' },
      { '@type': ANY.med, med: 7 },
      { '@type': ANY.localPref, local_pref: 200 },
      { type_url: 'type.googleapis.com/apipb.CommunitiesAttribute' },
    ],
    is_withdraw: false,
    family: { afi: 'AFI_IP', safi: 'SAFI_UNICAST' },
    source_asn: 65002,
    neighbor_ip: '198.18.50.2',
    stale: false,
    ...overrides,
  };
}

/** Encodes with the method's serializer and decodes what gobgpd would get (the wire, both ways). */
function roundTrip(method: string, message: object, side: 'request' | 'response' = 'request'): Record<string, unknown> {
  const m = gobgpDefinition()['apipb.GobgpApi'] as unknown as Record<string, MethodDefinition<object, object>>;
  const def = m[method]!;
  if (side === 'request') return def.requestDeserialize(def.requestSerialize(message)) as Record<string, unknown>;
  return def.responseDeserialize(def.responseSerialize(message)) as Record<string, unknown>;
}

describe('gobgp driver: paths', () => {
  it('an own route becomes an AddPath path: IPAddressPrefix NLRI, ORIGIN IGP, NEXT_HOP, packed as Any on the wire', () => {
    const route = ownRoute('10.244.3.0/24', '198.18.0.3');
    const path = ownPath(route);
    expect(path).toEqual({
      family: { afi: 'AFI_IP', safi: 'SAFI_UNICAST' },
      nlri: { '@type': ANY.ipAddressPrefix, prefix: '10.244.3.0', prefix_len: 24 },
      pattrs: [{ '@type': ANY.origin, origin: 0 }, { '@type': ANY.nextHop, next_hop: '198.18.0.3' }],
    });
    const wire = roundTrip('AddPath', { table_type: 'GLOBAL', path }) as { table_type: string; path: Path };
    expect(wire.table_type).toBe('GLOBAL');
    expect(wire.path.nlri).toEqual(path.nlri);
    expect(wire.path.pattrs).toEqual(path.pattrs);
    expect(ownRouteOf({ ...wire.path, neighbor_ip: '<nil>' })).toEqual(route);
  });

  it('own routes: canonical, IPv4 only, no host bits', () => {
    expect(ownRoute('10.244.3.0/24', '198.18.0.3')).toEqual({ prefix: '10.244.3.0/24', nextHop: '198.18.0.3' });
    expect(() => ownRoute('10.244.3.1/24', '198.18.0.3')).toThrow(/host bits/);
    expect(() => ownRoute('fd00::/64', '198.18.0.3')).toThrow(/IPv4 unicast only/);
    expect(() => ownRoute('10.244.3.0/24', 'fd00::1')).toThrow(/IPv4 unicast only/);
  });

  it('a received path becomes a LearnedPath: AS_SET counts one, confederation segments none, eBGP by the peer AS', () => {
    expect(learnedPath(received(), 65001)).toEqual({
      prefix: '10.244.1.0/24', nextHop: '198.18.50.2', asPathLength: 3, localPref: 200, med: 7, origin: 2, ebgp: true,
    });
    expect(learnedPath(received({ source_asn: 65001 }), 65001)?.ebgp).toBe(false);
    // No LOCAL_PREF, MED or ORIGIN: the defaults the backend compares with.
    const bare = received({ pattrs: [{ '@type': ANY.nextHop, next_hop: '198.18.50.2' }] });
    expect(learnedPath(bare, 65001)).toMatchObject({ asPathLength: 0, localPref: 100, med: 0, origin: 0 });
  });

  it('the MP_REACH next hop stands in for a missing NEXT_HOP (RFC 4760); no next hop, another family or NLRI: no path', () => {
    const mp = received({ pattrs: [{ '@type': ANY.mpReach, next_hops: ['198.18.50.9'] }] });
    expect(learnedPath(mp, 65001)?.nextHop).toBe('198.18.50.9');
    expect(learnedPath(received({ pattrs: [] }), 65001)).toBeUndefined();
    expect(learnedPath(received({ family: { afi: 'AFI_IP6', safi: 'SAFI_UNICAST' } }), 65001)).toBeUndefined();
    expect(learnedPath(received({ nlri: { type_url: 'type.googleapis.com/apipb.LabeledVPNIPAddressPrefix' } }), 65001)).toBeUndefined();
  });

  it('a received path survives the wire: the response decoder unpacks each Any it knows, keeps the others packed', () => {
    const wire = roundTrip('WatchEvent', { table: { paths: [received()] } }, 'response') as { event: string; table: { paths: Path[] } };
    expect(wire.event).toBe('table');
    const path = wire.table.paths[0]!;
    expect(learnedPath(path, 65001)).toEqual(learnedPath(received(), 65001));
    expect(path.pattrs?.[5]).toMatchObject({ type_url: 'type.googleapis.com/apipb.CommunitiesAttribute' });
  });

  it('withdrawals carry the prefix only; local paths have no neighbor', () => {
    const w = received({ is_withdraw: true, pattrs: [] });
    expect(prefixOf(w)).toBe('10.244.1.0/24');
    expect(neighborOf(w)).toBe('198.18.50.2');
    expect(neighborOf(received({ neighbor_ip: '<nil>' }))).toBeUndefined();
    expect(ownRouteOf(received())).toBeUndefined();
  });
});
