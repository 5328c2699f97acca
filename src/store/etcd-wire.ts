// The protobuf wire reading that src/store's own decoders of etcd's responses share
// (range-response.ts, watch-response.ts): a reader with protobufjs's bounds and errors, 64-bit
// integers as the decimal strings proto-loader gives with etcd3's options (longs: String), and
// the two messages both responses carry, ResponseHeader (etcd api/etcdserverpb/rpc.proto) and
// mvccpb.KeyValue (api/mvccpb/kv.proto), as the objects proto-loader makes of them: the same
// keys in the same order, defaults filled in, bytes as Buffers that view the message.

/** etcd's ResponseHeader as proto-loader gives it. */
export interface EtcdResponseHeader {
  cluster_id: string;
  member_id: string;
  revision: string;
  raft_term: string;
}

/** mvccpb.KeyValue as proto-loader gives it. */
export interface EtcdKeyValue {
  key: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  value: Buffer;
  lease: string;
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;
const TWO_POW_32 = 0x100000000;
/** protobufjs's (and protoc's) recursion limit. */
const MAX_DEPTH = 100;

/**
 * The decimal text of the 64-bit value hi * 2^32 + lo (both unsigned 32-bit), read as int64 when
 * `signed`. Below 2^53 a double holds it exactly; above (etcd's lease IDs are there) it is
 * written in two parts with exact double arithmetic, 2^32 being 4294 * 10^6 + 967296, rather
 * than through a bigint.
 */
function decimal(hi: number, lo: number, signed: boolean): string {
  if (hi < 0x200000) return String(hi * TWO_POW_32 + lo);
  if (signed && hi >= 0x80000000) {
    // Negative: the magnitude is the two's complement.
    const magLo = (TWO_POW_32 - lo) % TWO_POW_32;
    const magHi = TWO_POW_32 - 1 - hi + (lo === 0 ? 1 : 0);
    return `-${decimal(magHi, magLo, false)}`;
  }
  const low = hi * 967296 + lo; // < 2^52
  const high = hi * 4294 + Math.floor(low / 1e6);
  return `${high}${String(low % 1e6).padStart(6, '0')}`;
}

/**
 * protobufjs's Reader (7.6), as far as these messages use it, with its bounds: a nested message
 * must lie within its parent, is read with the message's end as the limit, and must end exactly
 * there. Where protobufjs accepts a malformed varint at the very end of the bytes (its slow path
 * reads a fourth byte unchecked), this one throws: it is never laxer.
 */
export class Reader {
  pos = 0;
  /** Where reading stops: the message's end, or a nested message's while it is read. */
  len: number;

  /** `what` names the message in errors ("etcd RangeResponse"). */
  constructor(readonly buf: Buffer, private readonly what: string) {
    this.len = buf.length;
  }

  /**
   * A nested message (a length, then its fields): `read` reads it with the message's end as the
   * limit (protobufjs's decode(reader, length)), and the outer limit holds again after it. Every
   * read inside is checked against the nested limit, so the message ends exactly at its own end
   * (protobufjs checks after the fact, as one of its reads is not).
   */
  message<T>(read: (r: Reader) => T): T {
    const end = this.delimitedEnd();
    const outer = this.len;
    this.len = end;
    const value = read(this);
    this.len = outer;
    return value;
  }

  /** Reads a length-delimited field's length; returns where the field ends, which must lie within the limit. */
  private delimitedEnd(): number {
    const end = this.uint32() + this.pos;
    if (end > this.len) throw this.outOfRange(end - this.pos);
    return end;
  }

  private outOfRange(n = 1): Error {
    return new RangeError(`${this.what}: index out of range: ${this.pos} + ${n} > ${this.len}`);
  }

  private byte(): number {
    if (this.pos >= this.len) throw this.outOfRange();
    return this.buf[this.pos++]!;
  }

  /** A varint's low 32 bits (unsigned): tags and lengths. As protobufjs, a fifth byte with its high bit set skips five more. */
  uint32(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value % TWO_POW_32;
    }
    this.advance(5);
    return value % TWO_POW_32;
  }

  /** A 64-bit varint as the decimal text of its value read as int64 (signed) or uint64; bits past 64 are dropped. */
  int64Text(signed: boolean): string {
    let lo = 0;
    let hi = 0;
    for (let i = 0, shift = 0; i < 10; i++, shift += 7) {
      const b = this.byte();
      const bits = b & 0x7f;
      // Bits 0..31 go to lo, 32..63 to hi; the fifth byte's straddle both.
      if (shift < 28) lo += bits * 2 ** shift;
      else if (shift === 28) {
        lo += (bits & 0x0f) * 2 ** 28;
        hi += bits >>> 4;
      } else hi += (bits * 2 ** (shift - 32)) % TWO_POW_32;
      if (b < 0x80) return decimal(hi % TWO_POW_32, lo, signed);
    }
    throw new Error(`${this.what}: invalid varint encoding`);
  }

  bool(): boolean {
    return this.uint32() !== 0;
  }

  bytes(): Buffer {
    const end = this.delimitedEnd();
    const start = this.pos;
    this.pos = end;
    return end === start ? Buffer.alloc(0) : this.buf.subarray(start, end);
  }

  /**
   * A string field. protobufjs cuts a string whose length runs past the message short and reads
   * on; this one throws there, as bytes() does: never laxer.
   */
  string(): string {
    const end = this.delimitedEnd();
    const start = this.pos;
    this.pos = end;
    return this.buf.toString('utf8', start, end);
  }

  skip(wireType: number, depth = 0): void {
    if (depth > MAX_DEPTH) throw new Error(`${this.what}: maximum nesting depth exceeded`);
    switch (wireType) {
      case VARINT:
        while (this.byte() >= 0x80);
        return;
      case FIXED64:
        this.advance(8);
        return;
      case LENGTH_DELIMITED:
        this.advance(this.uint32());
        return;
      case START_GROUP:
        for (let wt = this.uint32() & 7; wt !== END_GROUP; wt = this.uint32() & 7) this.skip(wt, depth + 1);
        return;
      case FIXED32:
        this.advance(4);
        return;
      default:
        throw new Error(`${this.what}: invalid wire type ${wireType} at offset ${this.pos}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.len) throw this.outOfRange(n);
    this.pos += n;
  }
}

/** A ResponseHeader's fields, up to the reader's limit (read through Reader.message()). */
export function decodeHeader(r: Reader): EtcdResponseHeader {
  const header: EtcdResponseHeader = { cluster_id: '0', member_id: '0', revision: '0', raft_term: '0' };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: header.cluster_id = r.int64Text(false); break;
      case 2: header.member_id = r.int64Text(false); break;
      case 3: header.revision = r.int64Text(true); break;
      case 4: header.raft_term = r.int64Text(false); break;
      default: r.skip(tag & 7);
    }
  }
  return header;
}

/** A KeyValue's fields, up to the reader's limit (read through Reader.message()). */
export function decodeKeyValue(r: Reader): EtcdKeyValue {
  let key: Buffer | undefined;
  let value: Buffer | undefined;
  let createRevision = '0';
  let modRevision = '0';
  let version = '0';
  let lease = '0';
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: key = r.bytes(); break;
      case 2: createRevision = r.int64Text(true); break;
      case 3: modRevision = r.int64Text(true); break;
      case 4: version = r.int64Text(true); break;
      case 5: value = r.bytes(); break;
      case 6: lease = r.int64Text(true); break;
      default: r.skip(tag & 7);
    }
  }
  // Field order as proto-loader's; an absent bytes field is a new empty Buffer each time, as its defaults are.
  return {
    key: key ?? Buffer.alloc(0), create_revision: createRevision, mod_revision: modRevision, version,
    value: value ?? Buffer.alloc(0), lease,
  };
}

/**
 * `definition` (proto-loader's, of etcd's rpc.proto) with `decode` as the response decoder of
 * `service`'s `method`. Throws if the definition has no such method, so a changed etcd3 fails the
 * build that installs it rather than run without it unnoticed.
 */
export function withResponseDecoder<T extends Record<string, unknown>>(definition: T, service: string, method: string, decode: (buf: Buffer) => unknown): T {
  const methods = definition[service] as Record<string, { responseDeserialize?: unknown } | undefined> | undefined;
  const found = methods?.[method];
  if (found === undefined || typeof found.responseDeserialize !== 'function') throw new Error(`etcd3's package definition has no ${service} ${method} method to decode`);
  found.responseDeserialize = decode;
  return definition;
}
