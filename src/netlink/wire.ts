/**
 * Netlink attribute (TLV) encoding and decoding: struct nlattr {u16 len; u16 type} followed by the
 * payload, each attribute aligned to 4 bytes (include/uapi/linux/netlink.h). Host byte order is
 * little-endian on every platform Twill ships for, except where an attribute says "be".
 */
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

/**
 * Zeroes buf[from, to), at most the 3 bytes of a netlink padding (an attribute's, a message's):
 * Buffer.fill validates its arguments at a cost that showed in a 5,000-host sync's profile (about
 * 15 ms of 15,000 entries).
 */
export function zeroPadding(buf: Buffer, from: number, to: number): void {
  for (let i = from; i < to; i++) buf[i] = 0;
}

export class AttrWriter {
  private buf: Buffer;
  private off: number;

  /** `header` is the fixed struct that precedes the attributes (ifinfomsg, rtmsg, ...). */
  constructor(header: Buffer, capacity = 128) {
    // allocUnsafe draws small buffers from Node's shared pool; every byte is written below
    // (header, attributes, and explicit zero padding), so nothing stale leaks to the kernel.
    this.buf = Buffer.allocUnsafe(Math.max(capacity, align(header.length) + 64));
    header.copy(this.buf, 0);
    this.off = align(header.length);
    zeroPadding(this.buf, header.length, this.off);
  }

  private reserve(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(bigger, 0, 0, this.off);
    this.buf = bigger;
  }

  /**
   * Writes the attribute header for a payload of `size` bytes and returns the payload offset.
   * It may grow (replace) this.buf, so callers take the offset before touching this.buf.
   */
  private begin(type: number, size: number): number {
    const len = 4 + size;
    const padded = align(len);
    this.reserve(padded);
    this.buf.writeUInt16LE(len, this.off);
    this.buf.writeUInt16LE(type, this.off + 2);
    zeroPadding(this.buf, this.off + len, this.off + padded);
    const at = this.off + 4;
    this.off += padded;
    return at;
  }

  bytes(type: number, value: Uint8Array): this {
    const at = this.begin(type, value.length);
    this.buf.set(value, at);
    return this;
  }

  u8(type: number, value: number): this {
    const at = this.begin(type, 1);
    this.buf.writeUInt8(value, at);
    return this;
  }

  u16be(type: number, value: number): this {
    const at = this.begin(type, 2);
    this.buf.writeUInt16BE(value, at);
    return this;
  }

  u32(type: number, value: number): this {
    const at = this.begin(type, 4);
    this.buf.writeUInt32LE(value >>> 0, at);
    return this;
  }

  s32(type: number, value: number): this {
    const at = this.begin(type, 4);
    this.buf.writeInt32LE(value, at);
    return this;
  }

  /** A NUL-terminated string, as the kernel expects for names and kinds. */
  str(type: number, value: string): this {
    return this.bytes(type, Buffer.from(`${value}\0`, 'utf8'));
  }

  flag(type: number): this {
    return this.bytes(type, new Uint8Array(0));
  }

  /** A nested attribute: `fill` writes the inner attributes (after an optional fixed header). */
  nested(type: number, fill: (inner: AttrWriter) => void, innerHeader: Buffer = Buffer.alloc(0)): this {
    const inner = new AttrWriter(innerHeader, 64);
    fill(inner);
    return this.bytes(type | NLA_F_NESTED, inner.finish());
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.off);
  }
}

/**
 * A zero-filled buffer for a request's fixed header struct (rtmsg, ndmsg, ...), drawn from Node's
 * shared pool: Buffer.alloc would give each of thousands of messages an ArrayBuffer of its own
 * for the garbage collector to track.
 */
export function headerStruct(size: number): Buffer {
  return Buffer.allocUnsafe(size).fill(0);
}

export function align(n: number): number {
  return (n + 3) & ~3;
}

/** Attributes by type; for repeated types the last one wins (rtnetlink sends each once). */
export type Attrs = Map<number, Buffer>;

export function parseAttrs(buf: Buffer, start = 0): Attrs {
  const out: Attrs = new Map();
  let off = align(start);
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len));
    off += align(len);
  }
  return out;
}

export function attrU32(attrs: Attrs, type: number): number | undefined {
  const v = attrs.get(type);
  return v && v.length >= 4 ? v.readUInt32LE(0) : undefined;
}

export function attrU8(attrs: Attrs, type: number): number | undefined {
  const v = attrs.get(type);
  return v && v.length >= 1 ? v.readUInt8(0) : undefined;
}

export function attrU16be(attrs: Attrs, type: number): number | undefined {
  const v = attrs.get(type);
  return v && v.length >= 2 ? v.readUInt16BE(0) : undefined;
}

export function attrStr(attrs: Attrs, type: number): string | undefined {
  const v = attrs.get(type);
  return v ? v.toString('utf8').replace(/\0.*$/s, '') : undefined;
}
