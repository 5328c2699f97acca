/**
 * BGP codec error handling: one case per rule of RFC 4271 §6 and RFC 7606, asserting the
 * NOTIFICATION code/subcode and the action, and for RFC 7606 outcomes the rewritten UPDATE.
 */
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeOpen } from '../../src/bgp/wire/index.js';
import { AS2, AS4, BASE_ATTRS_2, decodeUpdate, expectThrows, expectWarning, hex, msg, rawUpdate } from './bgp-codec-helpers.js';

const HEADER = 1;
const OPEN = 2;
const UPDATE = 3;

describe('message header (RFC 4271 §6.1)', () => {
  const keepalive = () => msg(4, '');
  it('marker not all ones → 1/1', () => {
    const m = keepalive();
    m[3] = 0;
    expectThrows(m, HEADER, 1);
  });
  it('length outside 19..4096, wrong for the type or not the buffer length → 1/2 with the length as data', () => {
    const long = keepalive();
    long.writeUInt16BE(4097, 16);
    expect(expectThrows(long, HEADER, 2).data).toEqual(hex('1001'));
    expectThrows(msg(4, '00'), HEADER, 2); // KEEPALIVE must be exactly 19
    expectThrows(msg(1, '04fde800f00a000001'), HEADER, 2); // OPEN shorter than 29
    expectThrows(msg(5, '000100'), HEADER, 2); // ROUTE-REFRESH must be 23
    expectThrows(Buffer.concat([keepalive(), Buffer.from([0])]), HEADER, 2);
    expectThrows(keepalive().subarray(0, 10), HEADER, 2);
  });
  it('unknown type → 1/3 with the type as data', () => {
    expect(expectThrows(msg(9, ''), HEADER, 3).data).toEqual(Buffer.from([9]));
  });
});

describe('OPEN (RFC 4271 §6.2)', () => {
  const open = (patch: (b: Buffer) => void = () => undefined) => {
    const b = encodeOpen({ version: 4, myAsn: 65000, holdTime: 90, routerId: '10.0.0.1', capabilities: { multiprotocol: ['ipv4-unicast'], routeRefresh: false, enhancedRouteRefresh: false, unknown: [] } });
    patch(b);
    return b;
  };
  it('version other than 4 → 2/1 with data = 4 as two octets', () => {
    expect(expectThrows(open((b) => (b[19] = 3)), OPEN, 1).data).toEqual(hex('0004'));
  });
  it('hold time 1 or 2 → 2/6; 0 and 3 are fine', () => {
    expectThrows(open((b) => b.writeUInt16BE(1, 22)), OPEN, 6);
    expectThrows(open((b) => b.writeUInt16BE(2, 22)), OPEN, 6);
    expect(() => decodeMessage(open((b) => b.writeUInt16BE(0, 22)), AS4)).not.toThrow();
    expect(() => decodeMessage(open((b) => b.writeUInt16BE(3, 22)), AS4)).not.toThrow();
  });
  it('BGP identifier 0.0.0.0 → 2/3', () => {
    expectThrows(open((b) => b.writeUInt32BE(0, 24)), OPEN, 3);
  });
  it('AS 0 → 2/2 (RFC 7607)', () => {
    expectThrows(open((b) => b.writeUInt16BE(0, 20)), OPEN, 2);
  });
  it('optional parameter other than capabilities → 2/4', () => {
    expectThrows(open((b) => (b[29] = 1)), OPEN, 4);
  });
  it('parameter lengths that do not add up → 2/0', () => {
    expectThrows(open((b) => (b[28] = b[28]! + 1)), OPEN, 0);
    expectThrows(open((b) => (b[30] = b[30]! + 1)), OPEN, 0);
    expectThrows(open((b) => (b[32] = b[32]! + 1)), OPEN, 0); // capability TLV overruns its parameter
  });
});

describe('UPDATE framing (RFC 4271 §6.3) → session reset', () => {
  it('withdrawn routes length overrunning the message → 3/1', () => {
    const m = rawUpdate('', '');
    m.writeUInt16BE(5, 19);
    expectThrows(m, UPDATE, 1);
  });
  it('total attribute length overrunning the message → 3/1', () => {
    const m = rawUpdate('', BASE_ATTRS_2, '080a');
    m.writeUInt16BE(100, 21);
    expectThrows(m, UPDATE, 1);
  });
  it('an attribute length overrunning the attribute area → 3/1', () => {
    expectThrows(rawUpdate('', `${BASE_ATTRS_2} c00808 fde80001`, '080a'), UPDATE, 1);
    expectThrows(rawUpdate('', `${BASE_ATTRS_2} 90 08 00`), UPDATE, 1); // extended header cut short
    expectThrows(rawUpdate('', `${BASE_ATTRS_2} 40`), UPDATE, 1);
  });
  it('bad prefix lengths and NLRI/withdrawn overruns → 3/10', () => {
    expectThrows(rawUpdate('', BASE_ATTRS_2, '21 0a000000 00'), UPDATE, 10); // /33
    expectThrows(rawUpdate('', BASE_ATTRS_2, '18 0a00'), UPDATE, 10);
    expectThrows(rawUpdate('21 0a00000000', ''), UPDATE, 10);
    expectThrows(rawUpdate('10 0a', ''), UPDATE, 10);
    expectThrows(rawUpdate('', `900e0016 0002 01 10 fd000000000000000000000000000001 00 81 ff`), UPDATE, 10); // /129
    expectThrows(rawUpdate('', `800f05 000201 40 fd`), UPDATE, 10);
  });
  it('MP_REACH/MP_UNREACH too short to locate AFI/SAFI or NLRI → 3/9', () => {
    expectThrows(rawUpdate('', '800e03 000201'), UPDATE, 9);
    expectThrows(rawUpdate('', '800e06 000201 20 0000'), UPDATE, 9);
    expectThrows(rawUpdate('', '800f02 0002'), UPDATE, 9);
  });
  it('MP_REACH or MP_UNREACH twice → 3/1 (RFC 7606 §3 g)', () => {
    expectThrows(rawUpdate('', '800f03000201 800f03000201'), UPDATE, 1);
    const reach = '800e16 0002 01 10 20010db8000000000000000000000001 00 00';
    expectThrows(rawUpdate('', `${reach} ${reach} 40010100 400200`), UPDATE, 1);
  });
  it('unrecognised well-known attribute → 3/2 with the attribute as data', () => {
    expect(expectThrows(rawUpdate('', `${BASE_ATTRS_2} 40 63 02 abcd`, '080a'), UPDATE, 2).data).toEqual(hex('4063 02 abcd'));
  });
});

describe('UPDATE treat-as-withdraw (RFC 7606 §3, §7)', () => {
  /** Replaces one attribute of the base set and checks the UPDATE became a withdrawal. */
  function withdrawn(attrs: string, subcode: number, opts = AS2): void {
    const u = expectWarning(rawUpdate('0808', attrs, '180a0001 080b'), subcode, 'treat-as-withdraw', opts);
    expect(u).toEqual({ type: 2, withdrawn: ['8.0.0.0/8', '10.0.1.0/24', '11.0.0.0/8'], nlri: [] });
  }
  const ORIGIN = '40010100';
  const AS_PATH = '400204 0201fde9';
  const NEXT_HOP = '400304 c0000201';

  it('missing ORIGIN, AS_PATH or NEXT_HOP (with classic NLRI) → 3/3', () => {
    withdrawn(`${AS_PATH} ${NEXT_HOP}`, 3);
    withdrawn(`${ORIGIN} ${NEXT_HOP}`, 3);
    withdrawn(`${ORIGIN} ${AS_PATH}`, 3);
  });
  it('malformed ORIGIN: bad length 3/5, value 3 → 3/6, wrong flags → 3/4', () => {
    withdrawn(`40010200 00 ${AS_PATH} ${NEXT_HOP}`, 5);
    withdrawn(`40010103 ${AS_PATH} ${NEXT_HOP}`, 6);
    withdrawn(`c0010100 ${AS_PATH} ${NEXT_HOP}`, 4);
  });
  it('malformed AS_PATH → 3/11: unknown segment type, zero-length segment, overrun, lone octet, AS 0', () => {
    for (const bad of ['400204 0501fde9', '400204 0200fde9', '400204 0202fde9', '400203 0201fd', '400205 0201fde9 02', '400204 02010000']) {
      withdrawn(`${ORIGIN} ${bad} ${NEXT_HOP}`, 11);
    }
    withdrawn(`${ORIGIN} 400206 0201 0000fde9 ${NEXT_HOP}`, 11); // a 4-octet path on a 2-octet session
  });
  it('malformed NEXT_HOP: length → 3/5, 0.0.0.0 or multicast → 3/8', () => {
    withdrawn(`${ORIGIN} ${AS_PATH} 400305 c000020100`, 5);
    withdrawn(`${ORIGIN} ${AS_PATH} 400304 00000000`, 8);
    withdrawn(`${ORIGIN} ${AS_PATH} 400304 e0000001`, 8);
  });
  it('malformed MED, LOCAL_PREF, COMMUNITIES, LARGE_COMMUNITIES, ORIGINATOR_ID, CLUSTER_LIST → 3/5', () => {
    for (const bad of ['800403 000001', '400502 0001', 'c00800', 'c00805 0000000001', 'c0200b 0000000000000000000000', '800903 000000', '800a00', '800a06 000000000000']) {
      withdrawn(`${BASE_ATTRS_2} ${bad}`, 5);
    }
    withdrawn(`${BASE_ATTRS_2} 400404 00000001`, 4); // MED marked well-known
  });
  it('moves MP_REACH prefixes into MP_UNREACH (IPv6) and the withdrawn field (IPv4)', () => {
    const v6 = '800e1e 0002 01 10 20010db8000000000000000000000001 00 40 fd00000000000001';
    const u6 = expectWarning(rawUpdate('', `${v6} 800f06000201 10fd01 40010103 400200`), 6, 'treat-as-withdraw', AS4);
    expect(u6).toEqual({ type: 2, withdrawn: [], nlri: [], mpUnreach: { family: 'ipv6-unicast', withdrawn: ['fd01::/16', 'fd00:0:0:1::/64'] } });
    const v4 = '800e0c 0001 01 04 c0000201 00 10 0a01';
    const u4 = expectWarning(rawUpdate('', `${v4} 40010100`), 3, 'treat-as-withdraw', AS4);
    expect(u4).toEqual({ type: 2, withdrawn: ['10.1.0.0/16'], nlri: [] });
  });
  it('an MP_REACH next hop of the wrong length withdraws its NLRI (RFC 7606 §7.11)', () => {
    const u = expectWarning(rawUpdate('', '800e12 0002 01 04 c0000201 00 40 fd00000000000001 40010100 400200'), 9, 'treat-as-withdraw', AS4);
    expect(u).toEqual({ type: 2, withdrawn: [], nlri: [], mpUnreach: { family: 'ipv6-unicast', withdrawn: ['fd00:0:0:1::/64'] } });
  });
});

describe('UPDATE attribute-discard (RFC 7606 §7, RFC 6793 §6)', () => {
  /** Adds one malformed attribute to a good UPDATE: the route survives without it. */
  function discarded(extra: string, subcode: number, opts = AS2): void {
    const u = expectWarning(rawUpdate('', `${BASE_ATTRS_2} ${extra}`, '080a'), subcode, 'attribute-discard', opts);
    expect(u).toEqual({ type: 2, withdrawn: [], nlri: ['10.0.0.0/8'], attributes: { origin: 0, asPath: [{ type: 'sequence', asns: [65001] }], nextHop: '192.0.2.1' } });
  }
  it('ATOMIC_AGGREGATE with a value or wrong flags', () => {
    discarded('400601 00', 5);
    discarded('c00600', 4);
  });
  it('AGGREGATOR of the wrong length, with AS 0, or non-transitive', () => {
    discarded('c00705 fde90a0000', 5);
    discarded('c00708 0000fde9 0a000001', 5); // 4-octet form on a 2-octet session
    discarded('c00706 0000 0a000001', 9);
    discarded('800706 fde9 0a000001', 4);
  });
  it('AS4_PATH with a confed segment, AS 0 or a bad length, and a short AS4_AGGREGATOR', () => {
    discarded('c01106 0301 fa56ea00', 11);
    discarded('c01106 0201 00000000', 11);
    discarded('c01105 0201 fa56ea', 11);
    discarded('c01207 fa56ea00 0a0000', 5);
  });
  it('a repeated attribute after the first (RFC 7606 §3 g): the first one counts', () => {
    const u = expectWarning(rawUpdate('', `${BASE_ATTRS_2} 40010102`, '080a'), 1, 'attribute-discard');
    expect(u.attributes?.origin).toBe(0);
  });
  it('an MP attribute for an AFI/SAFI Twill does not speak', () => {
    const u = expectWarning(rawUpdate('', `800f04 0019 46 00 ${BASE_ATTRS_2}`, '080a'), 9, 'attribute-discard');
    expect(u).not.toHaveProperty('mpUnreach');
    expect(u.nlri).toEqual(['10.0.0.0/8']);
  });
});

describe('tolerated', () => {
  it('keeps unknown optional attributes with their flags, Extended Length stripped, sorted by type', () => {
    const { update, warnings } = decodeUpdate(rawUpdate('', `${BASE_ATTRS_2} f0 63 0002 abcd c0 10 08 0002fde800000001`, '080a'));
    expect(warnings).toEqual([]);
    expect(update.attributes?.unknown).toEqual([{ flags: 0xc0, type: 16, value: hex('0002fde800000001') }, { flags: 0xe0, type: 99, value: hex('abcd') }]);
  });
  it('keeps attributes without NLRI and needs no mandatory ones for withdrawals only', () => {
    expect(decodeUpdate(rawUpdate('080a', '')).update).toEqual({ type: 2, withdrawn: ['10.0.0.0/8'], nlri: [] });
    expect(decodeUpdate(rawUpdate('', '800f03000201'), AS4).warnings).toEqual([]);
  });
});
