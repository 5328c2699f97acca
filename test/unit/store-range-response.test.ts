import { describe, expect, it } from 'vitest';
import { decodeRangeResponse, withRangeResponseDecoder } from '../../src/store/range-response.js';
import { prng } from './bgp-prng.js';
import { decoderCheck, delimited, etcdDefinition, INT64_EDGES, int, protoLoaderMethod, tag } from './etcd-decoder-check.js';

// The agent's bundle decodes etcd's RangeResponse with src/store/range-response.ts instead of
// proto-loader's generated decoder: it must give etcd3 the very same object, and fail where that
// one fails. Here both decode the same bytes: messages proto-loader encodes, and hand-made ones
// with unknown, repeated, mistyped and truncated fields.

const range = protoLoaderMethod('etcdserverpb.KV', 'Range');
const reference = (buf: Buffer): unknown => range.responseDeserialize(buf);
const encode = (message: unknown): Buffer => range.responseSerialize(message);
const { expectSame, truncatedAndMutated } = decoderCheck(decodeRangeResponse, reference);

describe('decodeRangeResponse, against proto-loader with etcd3\'s options', () => {
  it('decodes what etcd sends: an empty range, a listing, 64-bit edges, empty bytes', () => {
    expectSame(Buffer.alloc(0), 'empty message');
    expectSame(encode({ header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '5123', raft_term: '2' }, count: '0' }), 'no keys');
    const kvs = INT64_EDGES.map((n, i) => ({
      key: Buffer.from(`/coreos.com/network/subnets/10.244.${i}.0-24`),
      create_revision: String(n), mod_revision: String(-n), version: String(i), lease: String(n),
      value: i % 3 === 0 ? Buffer.alloc(0) : Buffer.from(JSON.stringify({ PublicIP: `198.18.0.${i}`, BackendType: 'vxlan' })),
    }));
    const listing = encode({ header: { cluster_id: String(2n ** 64n - 1n), member_id: '1', revision: String(2n ** 63n - 1n), raft_term: '0' }, kvs, more: true, count: String(kvs.length) });
    expectSame(listing, 'listing');
    // The same object, field for field (and Buffers, by content).
    const decoded = decodeRangeResponse(listing);
    expect(decoded.kvs[10]!.lease).toBe('7587886372946431000');
    expect(decoded.kvs[12]!.lease).toBe('-1');
    expect(decoded.header!.cluster_id).toBe('18446744073709551615');
  });

  it('writes 2,000 random 64-bit values as proto-loader does, signed and unsigned', () => {
    const next = prng(64).next;
    const word = (): bigint => BigInt(Math.floor(next() * 2 ** 32));
    const values = Array.from({ length: 2000 }, () => {
      const bits = (word() << 32n) | word();
      // Every magnitude: shift some values down so small and middle ones are common too.
      return bits >> BigInt(Math.floor(next() * 64));
    });
    const kvs = values.map((v) => ({ key: Buffer.from('k'), lease: String(BigInt.asIntN(64, v)), create_revision: String(-BigInt.asIntN(63, v)) }));
    expectSame(encode({ kvs }), 'int64 values');
    for (const v of values.slice(0, 200)) expectSame(encode({ header: { cluster_id: String(BigInt.asUintN(64, v)), raft_term: String(BigInt.asUintN(64, -v)) } }), `uint64 ${v}`);
  });

  it('matches on hand-made messages: unknown fields of every wire type, repeats, mistyped and overlong fields', () => {
    const kv = [...delimited(1, [0x61]), ...int(2, 5n), ...int(6, 2n ** 62n)];
    const cases: Record<string, number[]> = {
      'unknown varint, fixed64, bytes, fixed32': [...int(9, 3n), ...tag(10, 1), 1, 2, 3, 4, 5, 6, 7, 8, ...delimited(11, [1, 2]), ...tag(12, 5), 1, 2, 3, 4, ...delimited(2, kv)],
      'a group, skipped': [...tag(13, 3), ...int(1, 1n), ...tag(13, 4), ...delimited(2, kv)],
      'an end-group alone': [...tag(13, 4)],
      'wire type 6': [...tag(9, 6), 0],
      'two headers: the last wins': [...delimited(1, int(3, 5n)), ...delimited(1, int(4, 7n))],
      'a key given twice, a count given twice': [...delimited(2, [...delimited(1, [1]), ...delimited(1, [2])]), ...int(4, 1n), ...int(4, 2n)],
      'more as a 10-byte varint with only high bits': [...tag(3, 0), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
      'a tag as an overlong varint': [0x90, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05],
      'an 11-byte int64': [...tag(4, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
      'bits past 64 dropped': [...tag(4, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
      'a key field sent as a varint': [...delimited(2, [...tag(1, 0), 3, 0x61, 0x62, 0x63])],
      'a header whose last field runs past its length': [...tag(1, 2), 2, ...int(3, 300n), ...int(4, 9n)],
      'a key-value whose length runs past the message': [...tag(2, 2), 100, ...delimited(1, [1])],
      'a length past the message': [...tag(2, 2), 0xff, 0xff, 0xff, 0xff, 0x0f],
    };
    for (const [what, bytes] of Object.entries(cases)) expectSame(Buffer.from(bytes), what);
  });

  it('is never laxer on every truncation of a listing and on 3,000 random mutations of it, and equal where both decode', () => {
    const kvs = Array.from({ length: 6 }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), create_revision: String(i * 1000), mod_revision: '7', version: '1', lease: String(7587886372946431000n + BigInt(i)) }));
    const listing = encode({ header: { cluster_id: '1', member_id: '2', revision: '99', raft_term: '3' }, kvs, count: '6' });
    const { stricter, threw } = truncatedAndMutated(listing, 4271, 3000);
    // Both outcomes must be common, or the comparison proves little; stricter answers stay rare.
    expect(threw).toBeGreaterThan(300);
    expect(threw).toBeLessThan(2700);
    expect(stricter).toBeLessThan(30);
  });
});

describe('withRangeResponseDecoder', () => {
  it('makes decodeRangeResponse the Range method\'s response decoder of a package definition', () => {
    const def = etcdDefinition();
    expect(withRangeResponseDecoder(def)).toBe(def);
    expect((def['etcdserverpb.KV'] as Record<string, { responseDeserialize: unknown }>).Range!.responseDeserialize).toBe(decodeRangeResponse);
  });

  it('refuses a definition without it, so a changed etcd3 fails the build', () => {
    expect(() => withRangeResponseDecoder({ 'etcdserverpb.Lease': {} })).toThrow(/no etcdserverpb.KV Range method/);
  });
});
