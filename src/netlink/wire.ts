/**
 * Netlink attribute (TLV) encoding and decoding: struct nlattr {u16 len; u16 type} followed by the
 * payload, each attribute aligned to 4 bytes (include/uapi/linux/netlink.h). Host byte order is
 * little-endian on every platform Twill ships for, except where an attribute says "be".
 */
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

export class AttrWriter {
  private buf: Buffer;
  private off: number;

  /** `header` is the fixed struct that precedes the attributes (ifinfomsg, rtmsg, ...). */
  constructor(header: Buffer, capacity = 256) {
    this.buf = Buffer.alloc(Math.max(capacity, header.length + 64));
    header.copy(this.buf, 0);
    this.off = align(header.length);
  }

  private reserve(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(bigger, 0, 0, this.off);
    this.buf = bigger;
  }

  bytes(type: number, value: Uint8Array): this {
    const len = 4 + value.length;
    this.reserve(align(len));
    this.buf.writeUInt16LE(len, this.off);
    this.buf.writeUInt16LE(type, this.off + 2);
    this.buf.set(value, this.off + 4);
    this.off += align(len);
    return this;
  }

  u8(type: number, value: number): this {
    return this.bytes(type, Uint8Array.of(value));
  }

  u16be(type: number, value: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(value);
    return this.bytes(type, b);
  }

  u32(type: number, value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(value >>> 0);
    return this.bytes(type, b);
  }

  s32(type: number, value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32LE(value);
    return this.bytes(type, b);
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
