// Prefixes of one family as numbers, the form the codec decodes NLRI into and the RIB keys its
// tables by (prefix-table.ts). A prefix is its network address as unsigned 32-bit words, one for
// IPv4 and four for IPv6, most significant first, host bits zero, plus its length. A list keeps
// them in two typed arrays, so the 800 prefixes of a full 4,096-octet UPDATE are two allocations
// and no garbage per prefix, where text keys cost a string (and a hash of it) each.

import type { Family, Prefix } from '../types.js';
import { formatPrefixWords } from './prefix-text.js';

/** 32-bit words per prefix: 1 for IPv4, 4 for IPv6. */
export type Stride = 1 | 4;

export function strideOf(family: Family): Stride {
  return family === 'ipv4-unicast' ? 1 : 4;
}

export class PrefixList {
  readonly stride: Stride;
  /** The addresses, `stride` words per prefix. Replaced when the list grows: do not keep a reference. */
  words: Uint32Array;
  /** The prefix lengths. Replaced when the list grows. */
  lens: Uint8Array;
  count = 0;

  /** An empty list with room for `capacity` prefixes (it grows on push beyond that). */
  constructor(readonly family: Family, capacity = 8) {
    this.stride = strideOf(family);
    this.words = new Uint32Array(Math.max(1, capacity) * this.stride);
    this.lens = new Uint8Array(Math.max(1, capacity));
  }

  /** Appends the key at `words[at..]` with length `len`. */
  push(words: Uint32Array, at: number, len: number): void {
    const i = this.reserve();
    const s = this.stride;
    for (let k = 0; k < s; k++) this.words[i * s + k] = words[at + k]!;
    this.lens[i] = len;
  }

  /** Appends every prefix of `other` (same family). */
  append(other: PrefixList): void {
    this.makeRoom(other.count);
    this.words.set(other.words.subarray(0, other.count * other.stride), this.count * this.stride);
    this.lens.set(other.lens.subarray(0, other.count), this.count);
    this.count += other.count;
  }

  /** The canonical text of prefix `i` ("10.244.1.0/24", "fd00::/64"). */
  text(i: number): Prefix {
    return formatPrefixWords(this.stride, this.words, i * this.stride, this.lens[i]!);
  }

  /** Every prefix as canonical text, in order. */
  texts(): Prefix[] {
    const out = new Array<Prefix>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.text(i);
    return out;
  }

  /**
   * Makes room for `n` more prefixes beyond `count` (at least doubling, so a list filled by
   * appends copies each prefix a bounded number of times).
   */
  makeRoom(n: number): void {
    const need = this.count + n;
    if (need <= this.lens.length) return;
    const capacity = Math.max(need, 2 * this.lens.length);
    const words = new Uint32Array(capacity * this.stride);
    words.set(this.words.subarray(0, this.count * this.stride));
    this.words = words;
    const lens = new Uint8Array(capacity);
    lens.set(this.lens.subarray(0, this.count));
    this.lens = lens;
  }

  /** Makes room for one more prefix and returns its index. */
  private reserve(): number {
    if (this.count === this.lens.length) this.makeRoom(1);
    return this.count++;
  }
}

/** A new list holding `a` then `b` (same family). */
export function concatLists(a: PrefixList, b: PrefixList): PrefixList {
  const out = new PrefixList(a.family, a.count + b.count);
  out.append(a);
  out.append(b);
  return out;
}
