// etcd's WatchResponse (etcd api/etcdserverpb/rpc.proto, Event from api/mvccpb/kv.proto) decoded
// from its protobuf bytes into exactly the object @grpc/proto-loader hands etcd3's watcher, as
// range-response.ts does for the Range listing. Why: every lease written while the agent runs
// reaches it in a WatchResponse, and a burst (a transaction of 5,000 leases) is one message of
// 5,000 events, about 850 KiB. protobufjs's decoder for it is generated at run time, so the
// first burst after a start meets it cold (about 50 ms for 5,000 events, 10 ms once warm, and
// every int64 goes through a Long object). This one is plain code that the bundle's code cache
// holds. scripts/bundle-agent.mjs installs it as the Watch method's response decoder;
// test/unit/store-watch-response.test.ts holds it to proto-loader's output on valid and
// malformed messages.
//
// The same rules as range-response.ts: fields picked by number whatever their wire type, the last
// of a repeated scalar or message field kept, repeated ones appended, unknown fields skipped by
// wire type, and a throw wherever protobufjs throws on a malformed message. Where protobufjs is
// lax (a string running past its message is cut short) this one throws: never laxer.

import { decodeHeader, decodeKeyValue, Reader, withResponseDecoder, type EtcdKeyValue, type EtcdResponseHeader } from './etcd-wire.js';

/** mvccpb.Event as proto-loader gives it: the type's name, or its number when etcd3's proto names none. */
export interface WatchEventObject {
  type: string | number;
  kv: EtcdKeyValue | null;
  prev_kv: EtcdKeyValue | null;
}

export interface WatchResponseObject {
  events: WatchEventObject[];
  header: EtcdResponseHeader | null;
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  fragment: boolean;
}

/** mvccpb.Event.EventType as etcd3's kv.proto names it. */
const EVENT_TYPES: readonly string[] = ['Put', 'Delete'];

function decodeEvent(r: Reader): WatchEventObject {
  // Field order as proto-loader's.
  const event: WatchEventObject = { type: EVENT_TYPES[0]!, kv: null, prev_kv: null };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: {
        // An enum is read as int32 (protobufjs: uint32() | 0).
        const n = r.uint32() | 0;
        event.type = EVENT_TYPES[n] ?? n;
        break;
      }
      case 2: event.kv = r.message(decodeKeyValue); break;
      case 3: event.prev_kv = r.message(decodeKeyValue); break;
      default: r.skip(tag & 7);
    }
  }
  return event;
}

/** Decodes one WatchResponse message (one message of the Watch stream). */
export function decodeWatchResponse(buf: Buffer): WatchResponseObject {
  const r = new Reader(buf, 'etcd WatchResponse');
  const out: WatchResponseObject = {
    events: [], header: null, watch_id: '0', created: false, canceled: false, compact_revision: '0', cancel_reason: '', fragment: false,
  };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: out.header = r.message(decodeHeader); break;
      case 2: out.watch_id = r.int64Text(true); break;
      case 3: out.created = r.bool(); break;
      case 4: out.canceled = r.bool(); break;
      case 5: out.compact_revision = r.int64Text(true); break;
      case 6: out.cancel_reason = r.string(); break;
      case 7: out.fragment = r.bool(); break;
      case 11: out.events.push(r.message(decodeEvent)); break;
      default: r.skip(tag & 7);
    }
  }
  return out;
}

/** `definition` (proto-loader's, of etcd's rpc.proto) with decodeWatchResponse as the Watch service's response decoder. */
export function withWatchResponseDecoder<T extends Record<string, unknown>>(definition: T): T {
  return withResponseDecoder(definition, 'etcdserverpb.Watch', 'Watch', decodeWatchResponse);
}
