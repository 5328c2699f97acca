// Framing: turns the TCP byte stream into whole BGP messages (RFC 4271 §4.1: the header's Length
// field is the only delimiter).
import { HEADER_LENGTH, MAX_MESSAGE } from './constants.js';
import { checkHeader } from './header.js';

export class MessageReader {
  /** Bytes of an incomplete message carried over between chunks (never more than one message). */
  #pending = Buffer.allocUnsafe(MAX_MESSAGE);
  #fill = 0;

  /**
   * Returns the complete messages (header included) that `chunk` finishes, keeping the remainder.
   * Messages lying wholly inside `chunk` are returned as views of it, without copying. Throws
   * BgpMessageError (header errors, RFC 4271 §6.1) as soon as a bad header is complete; the
   * stream cannot be resynchronised after that, so the session resets.
   */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let off = this.#fill > 0 ? this.#completePending(chunk, out) : 0;
    while (chunk.length - off >= HEADER_LENGTH) {
      const length = checkHeader(chunk, off);
      if (chunk.length - off < length) break;
      out.push(chunk.subarray(off, off + length));
      off += length;
    }
    if (off < chunk.length) {
      chunk.copy(this.#pending, this.#fill, off);
      this.#fill += chunk.length - off;
    }
    return out;
  }

  /** Bytes held back waiting for the rest of a message. */
  get buffered(): number {
    return this.#fill;
  }

  /** Tops up the pending message from `chunk`; returns how much of `chunk` it used. */
  #completePending(chunk: Buffer, out: Buffer[]): number {
    let off = 0;
    if (this.#fill < HEADER_LENGTH) {
      off = Math.min(HEADER_LENGTH - this.#fill, chunk.length);
      chunk.copy(this.#pending, this.#fill, 0, off);
      this.#fill += off;
      if (this.#fill < HEADER_LENGTH) return off;
    }
    const length = checkHeader(this.#pending, 0);
    const take = Math.min(length - this.#fill, chunk.length - off);
    chunk.copy(this.#pending, this.#fill, off, off + take);
    this.#fill += take;
    off += take;
    if (this.#fill === length) {
      out.push(Buffer.from(this.#pending.subarray(0, length)));
      this.#fill = 0;
    }
    return off;
  }
}
