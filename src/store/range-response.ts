// etcd's RangeResponse (etcd api/etcdserverpb/rpc.proto, KeyValue from api/mvccpb/kv.proto)
// decoded from its protobuf bytes, into exactly the object @grpc/proto-loader hands etcd3 with
// etcd3's options (keepCase, longs: String, enums: String, defaults: true, oneofs: true): the
// same keys in the same order, 64-bit integers as decimal strings, bytes as Buffers that view
// the message. Why: an agent starting with 5,000 leases reads them in one RangeResponse, and
// protobufjs's decoder for it is generated at run time (so it runs cold on that first, largest
// read: about 100 ms for 5,000 keys measured, 20 ms once warm), then converts every int64 through
// a Long object. This one is plain code that the bundle's code cache holds, with no Long.
// scripts/bundle-agent.mjs installs it as the Range method's response decoder in the package
// definition etcd3 builds its clients from; test/unit/store-range-response.test.ts holds it to
// proto-loader's output on valid and malformed messages.
//
// Like protobufjs's generated decoders it picks fields by number whatever their wire type, keeps
// the last of a repeated scalar or message field, appends repeated ones, skips unknown fields by
// wire type, and throws where protobufjs would on a malformed message (grpc-js then fails the call).
// The reader and the header and key-value decoding are etcd-wire.ts's, shared with watch-response.ts.

import { decodeHeader, decodeKeyValue, Reader, withResponseDecoder, type EtcdKeyValue, type EtcdResponseHeader } from './etcd-wire.js';

export interface RangeResponseObject {
  kvs: EtcdKeyValue[];
  header: EtcdResponseHeader | null;
  more: boolean;
  count: string;
}

/** Decodes one RangeResponse message (a gRPC response's bytes). */
export function decodeRangeResponse(buf: Buffer): RangeResponseObject {
  const r = new Reader(buf, 'etcd RangeResponse');
  const out: RangeResponseObject = { kvs: [], header: null, more: false, count: '0' };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: out.header = r.message(decodeHeader); break;
      case 2: out.kvs.push(r.message(decodeKeyValue)); break;
      case 3: out.more = r.bool(); break;
      case 4: out.count = r.int64Text(true); break;
      default: r.skip(tag & 7);
    }
  }
  return out;
}

/** `definition` (proto-loader's, of etcd's rpc.proto) with decodeRangeResponse as the KV service's Range response decoder. */
export function withRangeResponseDecoder<T extends Record<string, unknown>>(definition: T): T {
  return withResponseDecoder(definition, 'etcdserverpb.KV', 'Range', decodeRangeResponse);
}
