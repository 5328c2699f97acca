// Prefix ranges (prefix-set.ts) compiled for numeric prefixes (../prefix/prefix-list.ts): per
// family one Uint32Array of (network words, masks, ge, le) rows, so testing a received prefix is
// a loop of integer comparisons over one array, with no text to read. Same meaning as
// PrefixRange.matchesBits(): the length within ge..le and the network bits equal under the
// range's mask.

import type { Stride } from '../prefix/prefix-list.js';
import { PrefixBits, readPrefix, word, wordMask } from './prefix-bits.js';

/** What a matcher needs of a range: its canonical covering prefix and its window of lengths. */
export interface RangeSource {
  readonly prefix: string;
  readonly ge: number;
  readonly le: number;
}

const V4_ROW = 4; // word, mask, ge, le
const V6_ROW = 10; // w0..w3, m0..m3, ge, le

export class RangeMatcher {
  private readonly v4: Uint32Array;
  private readonly v6: Uint32Array;

  constructor(ranges: readonly RangeSource[]) {
    const bits = new PrefixBits();
    const v4: number[] = [];
    const v6: number[] = [];
    for (const r of ranges) {
      // The range's prefix was checked when it was built; it always reads.
      if (!readPrefix(r.prefix, bits)) throw new Error(`prefix range ${r.prefix} is not canonical`);
      if (!bits.v6) {
        v4.push(bits.w0, wordMask(bits.length, 0), r.ge, r.le);
        continue;
      }
      for (let k = 0; k < 4; k++) v6.push(word(bits, k));
      for (let k = 0; k < 4; k++) v6.push(wordMask(bits.length, k));
      v6.push(r.ge, r.le);
    }
    this.v4 = Uint32Array.from(v4);
    this.v6 = Uint32Array.from(v6);
  }

  /** True when the prefix at `words[at..]`/`len` falls in one of the ranges. */
  matches(stride: Stride, words: Uint32Array, at: number, len: number): boolean {
    return stride === 1 ? this.matchesV4(words[at]!, len) : this.matchesV6(words, at, len);
  }

  matchesV4(addr: number, len: number): boolean {
    const t = this.v4;
    for (let r = 0; r < t.length; r += V4_ROW) {
      if (len >= t[r + 2]! && len <= t[r + 3]! && ((addr ^ t[r]!) & t[r + 1]!) === 0) return true;
    }
    return false;
  }

  matchesV6(words: Uint32Array, at: number, len: number): boolean {
    const t = this.v6;
    for (let r = 0; r < t.length; r += V6_ROW) {
      if (len < t[r + 8]! || len > t[r + 9]!) continue;
      if (((words[at]! ^ t[r]!) & t[r + 4]!) !== 0) continue;
      if (((words[at + 1]! ^ t[r + 1]!) & t[r + 5]!) !== 0) continue;
      if (((words[at + 2]! ^ t[r + 2]!) & t[r + 6]!) !== 0) continue;
      if (((words[at + 3]! ^ t[r + 3]!) & t[r + 7]!) === 0) return true;
    }
    return false;
  }
}
