// What the tests of src/store's own etcd response decoders (range-response.ts, watch-response.ts)
// share: protobuf wire writing for hand-made messages, and the comparison with proto-loader's
// decoder for the same method with etcd3's options. Ours must give etcd3 the very same object,
// and fail where that one fails.

import type { MethodDefinition } from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { expect } from 'vitest';
import { prng } from './bgp-prng.js';

const require = createRequire(import.meta.url);
const protoLoader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
export const RPC_PROTO = require.resolve('etcd3/proto/rpc.proto');
/** etcd3's options (node_modules/etcd3/lib/connection-pool.js). */
export const OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** A fresh package definition of etcd's rpc.proto, as etcd3 makes it. */
export function etcdDefinition(): ReturnType<typeof protoLoader.loadSync> {
  return protoLoader.loadSync(RPC_PROTO, OPTIONS);
}

/** proto-loader's method `service`/`method` of a fresh definition. */
export function protoLoaderMethod(service: string, method: string): MethodDefinition<unknown, unknown> {
  return (etcdDefinition()[service] as Record<string, MethodDefinition<unknown, unknown>>)[method]!;
}

// Protobuf wire writing.
export function varint(value: bigint): number[] {
  let v = BigInt.asUintN(64, value);
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return out;
}
export const tag = (field: number, wireType: number): number[] => varint(BigInt((field << 3) | wireType));
export const delimited = (field: number, bytes: number[]): number[] => [...tag(field, 2), ...varint(BigInt(bytes.length)), ...bytes];
export const int = (field: number, value: bigint): number[] => [...tag(field, 0), ...varint(value)];

export const INT64_EDGES = [0n, 1n, 127n, 128n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 7587886372946431000n, 2n ** 63n - 1n, -1n, -(2n ** 63n), -(2n ** 32n)];

export function outcome(decode: (b: Buffer) => unknown, buf: Buffer): { value?: unknown; threw?: true } {
  try {
    return { value: decode(buf) };
  } catch {
    return { threw: true };
  }
}

export interface DecoderCheck {
  /** Both decoders give the same object for `buf`, or both throw. */
  expectSame(buf: Buffer, what: string): void;
  /**
   * Malformed bytes: whatever ours returns, proto-loader returns too. Ours may throw where
   * proto-loader does not (protobufjs's slow path accepts a varint cut off at the very end, and
   * cuts an overlong string short), never the other way round. Returns whether it threw where
   * proto-loader did not.
   */
  expectNeverLaxer(buf: Buffer, what: string): boolean;
  /**
   * expectNeverLaxer() on every truncation of `message` and on `mutations` copies of it with one
   * to three random bytes changed (seeded): how often ours was stricter, and how often
   * proto-loader threw on a mutation (both outcomes must be common for the comparison to prove much).
   */
  truncatedAndMutated(message: Buffer, seed: number, mutations: number): { stricter: number; threw: number };
}

export function decoderCheck(ours: (b: Buffer) => unknown, reference: (b: Buffer) => unknown): DecoderCheck {
  const expectNeverLaxer = (buf: Buffer, what: string): boolean => {
    const mine = outcome(ours, buf);
    const theirs = outcome(reference, buf);
    if (mine.threw && !theirs.threw) return true;
    expect({ what, ...mine }).toEqual({ what, ...theirs });
    return false;
  };
  return {
    expectSame(buf, what) {
      expect({ what, ...outcome(ours, buf) }).toEqual({ what, ...outcome(reference, buf) });
    },
    expectNeverLaxer,
    truncatedAndMutated(message, seed, mutations) {
      const next = prng(seed).next;
      let stricter = 0;
      for (let n = 0; n < message.length; n++) if (expectNeverLaxer(message.subarray(0, n), `first ${n} bytes`)) stricter++;
      let threw = 0;
      for (let k = 0; k < mutations; k++) {
        const bytes = Buffer.from(message);
        for (let m = 1 + Math.floor(next() * 3); m > 0; m--) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
        if (expectNeverLaxer(bytes, `mutation ${k}: ${bytes.toString('hex')}`)) stricter++;
        if (outcome(reference, bytes).threw) threw++;
      }
      return { stricter, threw };
    },
  };
}
