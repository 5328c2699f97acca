// A growable byte writer for the encoders. Packing code that needs speed writes into plain
// Buffers with offsets instead; this one is for the per-message parts (attributes, OPEN).
import { InvalidArgumentError } from '../../core/errors.js';
import { AttrFlag } from './constants.js';

export class ByteWriter {
  buf: Buffer;
  pos = 0;

  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Reserves a 2-octet length field and returns where to patch it. */
  reserve16(): number {
    this.u16(0);
    return this.pos - 2;
  }

  patch16(at: number, v: number): void {
    this.buf[at] = (v >>> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }

  /**
   * Writes one path attribute (RFC 4271 §4.3) whose value `fill` writes. The Extended Length bit
   * is set only when the value needs it (> 255 octets), so equal attributes encode equally.
   */
  attribute(flags: number, type: number, fill: (w: this) => void): this {
    const start = this.pos;
    this.u8(flags).u8(type).u16(0);
    fill(this);
    const valueLength = this.pos - start - 4;
    if (valueLength > 0xffff) throw new InvalidArgumentError('path attribute', type, `value of ${valueLength} octets is too long`);
    if (valueLength > 255) {
      this.buf[start] = flags | AttrFlag.EXTENDED_LENGTH;
      this.patch16(start + 2, valueLength);
    } else {
      this.buf[start] = flags & ~AttrFlag.EXTENDED_LENGTH;
      this.buf[start + 2] = valueLength;
      this.buf.copyWithin(start + 3, start + 4, this.pos);
      this.pos--;
    }
    return this;
  }

  /** A copy of what was written. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}
