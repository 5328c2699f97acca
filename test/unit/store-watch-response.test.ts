import { describe, expect, it } from 'vitest';
import { decodeWatchResponse, withWatchResponseDecoder } from '../../src/store/watch-response.js';
import { prng } from './bgp-prng.js';
import { decoderCheck, delimited, etcdDefinition, INT64_EDGES, int, protoLoaderMethod, tag } from './etcd-decoder-check.js';

// The agent's bundle decodes the messages of etcd's Watch stream with src/store/watch-response.ts
// instead of proto-loader's generated decoder: etcd3's watcher must get the very same object, and
// a message that proto-loader refuses must be refused too. Both decode the same bytes here.

const watch = protoLoaderMethod('etcdserverpb.Watch', 'Watch');
const reference = (buf: Buffer): unknown => watch.responseDeserialize(buf);
const encode = (message: unknown): Buffer => watch.responseSerialize(message);
const { expectSame, truncatedAndMutated } = decoderCheck(decodeWatchResponse, reference);

const HEADER = { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '7001', raft_term: '2' };

function leaseKv(i: number, lease = '7587886372946431000'): Record<string, unknown> {
  return {
    key: Buffer.from(`/coreos.com/network/subnets/10.244.${i}.0-24`),
    create_revision: String(1000 + i), mod_revision: '7001', version: '1', lease,
    value: Buffer.from(JSON.stringify({ PublicIP: `198.18.0.${i}`, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '02:42:ac:11:00:02' } })),
  };
}

describe('decodeWatchResponse, against proto-loader with etcd3\'s options', () => {
  it('decodes what etcd sends: created, a burst of puts, deletes with prev_kv, progress, cancel, compaction', () => {
    expectSame(Buffer.alloc(0), 'empty message');
    expectSame(encode({ header: HEADER, watch_id: '0', created: true }), 'created');
    const burst = encode({ header: HEADER, events: Array.from({ length: 200 }, (_, i) => ({ type: 'Put', kv: leaseKv(i) })) });
    expectSame(burst, 'a burst of puts');
    const deletes = encode({
      header: HEADER, watch_id: '3',
      events: [
        { type: 'Delete', kv: { key: Buffer.from('/coreos.com/network/subnets/10.244.1.0-24'), mod_revision: '7002' }, prev_kv: leaseKv(1) },
        { type: 'Delete', kv: { key: Buffer.from('/coreos.com/network/subnets/10.244.2.0-24'), mod_revision: '7002' } },
        { type: 'Put', kv: leaseKv(3, '0'), prev_kv: leaseKv(3) },
      ],
    });
    expectSame(deletes, 'deletes and a put with prev_kv');
    expectSame(encode({ header: HEADER }), 'progress notification');
    expectSame(encode({ header: HEADER, watch_id: '7', canceled: true, cancel_reason: 'etcdserver: mvcc: required revision has been compacted', compact_revision: '6000' }), 'canceled, compacted');
    expectSame(encode({ header: HEADER, fragment: true, events: [{ type: 'Put', kv: leaseKv(4) }] }), 'a fragment');
    // The same object, field for field, and what the agent reads of it.
    const decoded = decodeWatchResponse(deletes);
    expect(decoded.events.map((e) => e.type)).toEqual(['Delete', 'Delete', 'Put']);
    expect(decoded.events[1]!.prev_kv).toBeNull();
    expect(decoded.events[0]!.prev_kv!.lease).toBe('7587886372946431000');
    expect(decoded.watch_id).toBe('3');
    expect(decoded.header!.revision).toBe('7001');
  });

  it('writes 64-bit edges and 1,000 random values as proto-loader does', () => {
    const edges = INT64_EDGES.map((n, i) => ({ type: 'Put', kv: { ...leaseKv(i), create_revision: String(n), mod_revision: String(-n), lease: String(n) } }));
    expectSame(encode({ header: { ...HEADER, cluster_id: String(2n ** 64n - 1n), revision: String(2n ** 63n - 1n) }, watch_id: String(-1n), compact_revision: String(2n ** 63n - 1n), events: edges }), '64-bit edges');
    const next = prng(2379).next;
    const word = (): bigint => BigInt(Math.floor(next() * 2 ** 32));
    for (let k = 0; k < 1000; k++) {
      const bits = ((word() << 32n) | word()) >> BigInt(Math.floor(next() * 64));
      expectSame(encode({ watch_id: String(BigInt.asIntN(64, bits)), compact_revision: String(-BigInt.asIntN(63, bits)) }), `int64 ${bits}`);
    }
  });

  it('matches on hand-made messages: event types etcd3 does not name, unknown fields, repeats, mistyped and overlong fields', () => {
    const kv = [...delimited(1, [0x61]), ...int(3, 5n), ...int(6, 2n ** 62n)];
    const cases: Record<string, number[]> = {
      'an event type 2': [...delimited(11, [...int(1, 2n), ...delimited(2, kv)])],
      'an event type -1 (ten bytes)': [...delimited(11, [...int(1, -1n), ...delimited(2, kv)])],
      'an event type past 32 bits': [...delimited(11, int(1, 2n ** 40n + 1n))],
      'an event with no fields': [...delimited(11, [])],
      'two kvs in one event: the last wins': [...delimited(11, [...delimited(2, kv), ...delimited(2, delimited(1, [0x62]))])],
      'unknown varint, fixed64, bytes, fixed32, group': [...int(9, 3n), ...tag(10, 1), 1, 2, 3, 4, 5, 6, 7, 8, ...delimited(12, [1, 2]), ...tag(13, 5), 1, 2, 3, 4, ...tag(14, 3), ...int(1, 1n), ...tag(14, 4), ...delimited(11, delimited(2, kv))],
      'unknown fields inside an event': [...delimited(11, [...int(9, 1n), ...delimited(4, [1, 2, 3]), ...delimited(2, kv)])],
      'an end-group alone': [...tag(13, 4)],
      'wire type 6': [...tag(9, 6), 0],
      'created, canceled and fragment as overlong varints': [...tag(3, 0), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, ...tag(4, 0), 0x80, 0x00, ...tag(7, 0), 0x02],
      'a watch id given twice': [...int(2, 5n), ...int(2, 6n)],
      'a cancel reason given twice, not UTF-8': [...delimited(6, [0x61]), ...delimited(6, [0xff, 0xfe, 0x61, 0xc3])],
      'a header given twice': [...delimited(1, int(3, 5n)), ...delimited(1, int(4, 7n))],
      'a kv field sent as a varint': [...delimited(11, [...tag(2, 0), 3])],
      'an event whose length runs past the message': [...tag(11, 2), 100, ...delimited(2, kv)],
      'a kv whose length runs past its event': [...delimited(11, [...tag(2, 2), 40, ...kv])],
      'an 11-byte int64': [...tag(5, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    };
    for (const [what, bytes] of Object.entries(cases)) expectSame(Buffer.from(bytes), what);
  });

  it('is never laxer on every truncation of a burst and on 3,000 random mutations of it, and equal where both decode', () => {
    const events = Array.from({ length: 4 }, (_, i) => ({ type: i === 2 ? 'Delete' : 'Put', kv: leaseKv(i), ...(i === 3 && { prev_kv: leaseKv(9) }) }));
    const message = encode({ header: HEADER, watch_id: '1', cancel_reason: 'x', events });
    const { stricter, threw } = truncatedAndMutated(message, 4271, 3000);
    // Both outcomes must be common, or the comparison proves little; stricter answers stay rare.
    expect(threw).toBeGreaterThan(300);
    expect(threw).toBeLessThan(2700);
    expect(stricter).toBeLessThan(60);
  });
});

describe('withWatchResponseDecoder', () => {
  it('makes decodeWatchResponse the Watch method\'s response decoder of a package definition', () => {
    const def = etcdDefinition();
    expect(withWatchResponseDecoder(def)).toBe(def);
    expect((def['etcdserverpb.Watch'] as Record<string, { responseDeserialize: unknown }>).Watch!.responseDeserialize).toBe(decodeWatchResponse);
  });

  it('refuses a definition without it, so a changed etcd3 fails the build', () => {
    expect(() => withWatchResponseDecoder({ 'etcdserverpb.KV': {} })).toThrow(/no etcdserverpb.Watch Watch method/);
  });
});
