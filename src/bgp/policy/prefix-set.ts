// Prefix ranges, the matching unit of import and export policy: a prefix plus a window of
// lengths, as FRR's prefix-lists ("permit 10.244.0.0/16 le 32") and BIRD's
// "[10.244.0.0/16{24,32}]" have them.
//
// Text form (one form, the one the CLI's --accept and --announce use):
//
//   <prefix>[,ge=<len>][,le=<len>]        e.g. "10.244.0.0/16,ge=24,le=32", "fd00::/48,le=128"
//
// with FRR's meaning: no ge/le matches exactly <prefix>; "le" alone matches lengths
// <prefix length>..le; "ge" alone matches ge..the family maximum (32 or 128); both match ge..le.
// A matching prefix must also lie inside <prefix>. Ranges are compiled to integer words and masks
// once, so matching is a handful of integer comparisons.

import { InvalidArgumentError } from '../../core/errors.js';
import { formatCidr, parsePrefix } from '../../core/ip.js';
import type { Family, Prefix } from '../types.js';
import { PrefixBits, readPrefix, wordMask } from './prefix-bits.js';
import { RangeMatcher } from './range-matcher.js';

/** One prefix with a window of accepted lengths. Build with {@link parsePrefixRange} or {@link prefixRange}. */
export class PrefixRange {
  readonly family: Family;
  /** The covering prefix, canonical. */
  readonly prefix: Prefix;
  readonly length: number;
  /** Shortest matching length (inclusive). */
  readonly ge: number;
  /** Longest matching length (inclusive). */
  readonly le: number;
  private readonly v6: boolean;
  private readonly words: readonly number[];
  private readonly masks: readonly number[];

  /** @internal use {@link prefixRange}; this checks nothing. */
  constructor(prefix: Prefix, bits: PrefixBits, ge: number, le: number) {
    this.prefix = prefix;
    this.v6 = bits.v6;
    this.family = bits.v6 ? 'ipv6-unicast' : 'ipv4-unicast';
    this.length = bits.length;
    this.ge = ge;
    this.le = le;
    this.words = [bits.w0, bits.w1, bits.w2, bits.w3];
    this.masks = [0, 1, 2, 3].map((i) => wordMask(bits.length, i));
  }

  /** True when `bits` (from readPrefix) falls in this range. */
  matchesBits(bits: PrefixBits): boolean {
    if (bits.v6 !== this.v6 || bits.length < this.ge || bits.length > this.le) return false;
    const m = this.masks;
    const w = this.words;
    if (((bits.w0 ^ w[0]!) & m[0]!) !== 0) return false;
    if (!this.v6) return true;
    return ((bits.w1 ^ w[1]!) & m[1]!) === 0 && ((bits.w2 ^ w[2]!) & m[2]!) === 0 && ((bits.w3 ^ w[3]!) & m[3]!) === 0;
  }

  /** True when `prefix` falls in this range; false for text that is not a prefix. */
  matches(prefix: Prefix): boolean {
    return readPrefix(prefix, scratch) && this.matchesBits(scratch);
  }

  /** The text form, which {@link parsePrefixRange} reads back. */
  toString(): string {
    const max = this.v6 ? 128 : 32;
    if (this.ge === this.length && this.le === this.length) return this.prefix;
    if (this.ge === this.length) return `${this.prefix},le=${this.le}`;
    if (this.le === max) return `${this.prefix},ge=${this.ge}`;
    return `${this.prefix},ge=${this.ge},le=${this.le}`;
  }
}

const scratch = new PrefixBits();

/**
 * Builds a range from a canonical prefix (host bits zero; throws otherwise, naming the canonical
 * network) and optional ge/le, with FRR's defaults (see the file comment). Requires
 * length <= ge <= le <= 32 (IPv4) or 128 (IPv6).
 */
export function prefixRange(prefix: string, options: { ge?: number | undefined; le?: number | undefined } = {}, what = 'prefix range'): PrefixRange {
  return compile(prefix, options.ge, options.le, what, prefix);
}

/** Parses "<prefix>[,ge=<len>][,le=<len>]" (options in either order, each at most once). */
export function parsePrefixRange(text: string, what = 'prefix range'): PrefixRange {
  if (typeof text !== 'string') throw new InvalidArgumentError(what, text, 'not a string');
  const [prefix = '', ...options] = text.split(',').map((part) => part.trim());
  const found: { ge?: number; le?: number } = {};
  for (const option of options) {
    const m = /^(ge|le)=(\d{1,3})$/.exec(option);
    if (!m) throw new InvalidArgumentError(what, text, `"${option}" is not ge=<length> or le=<length>`);
    const key = m[1] as 'ge' | 'le';
    if (found[key] !== undefined) throw new InvalidArgumentError(what, text, `${key} is given twice`);
    found[key] = Number(m[2]);
  }
  return compile(prefix, found.ge, found.le, what, text);
}

/** Checks and compiles a range; errors name `shown` (the whole text the user gave). */
function compile(prefix: string, geOpt: number | undefined, leOpt: number | undefined, what: string, shown: string): PrefixRange {
  let canonical: string;
  try {
    canonical = formatCidr(parsePrefix(prefix, 'prefix'));
  } catch (err) {
    throw new InvalidArgumentError(what, shown, (err as Error).message);
  }
  const bits = new PrefixBits();
  if (!readPrefix(canonical, bits)) throw new InvalidArgumentError(what, shown, 'not a prefix');
  const max = bits.v6 ? 128 : 32;
  const ge = geOpt ?? bits.length;
  const le = leOpt ?? (geOpt === undefined ? bits.length : max);
  for (const [name, v] of [['ge', ge], ['le', le]] as const) {
    if (!Number.isInteger(v) || v < bits.length || v > max) {
      throw new InvalidArgumentError(what, shown, `${name}=${v} must be an integer from the prefix length ${bits.length} to ${max}`);
    }
  }
  if (ge > le) throw new InvalidArgumentError(what, shown, `ge=${ge} is greater than le=${le}`);
  return new PrefixRange(canonical, bits, ge, le);
}

/** A range given either compiled or as text. */
export type PrefixRangeInput = PrefixRange | string;

/** An ordered list of ranges; a prefix matches the set when it matches any range. */
export class PrefixSet {
  readonly ranges: readonly PrefixRange[];
  /** The same ranges compiled for numeric prefixes (the RIB's keys). */
  readonly matcher: RangeMatcher;

  constructor(ranges: readonly PrefixRangeInput[], what = 'prefix range') {
    this.ranges = ranges.map((r) => (typeof r === 'string' ? parsePrefixRange(r, what) : r));
    this.matcher = new RangeMatcher(this.ranges);
  }

  get size(): number {
    return this.ranges.length;
  }

  matchesBits(bits: PrefixBits): boolean {
    // A plain loop: policies hold one to a few ranges, and this runs once per route.
    const ranges = this.ranges;
    for (let i = 0; i < ranges.length; i++) if (ranges[i]!.matchesBits(bits)) return true;
    return false;
  }

  matches(prefix: Prefix): boolean {
    return readPrefix(prefix, scratch) && this.matchesBits(scratch);
  }
}

/** The family of a prefix in canonical text (IPv6 text always holds a colon). */
export function familyOf(prefix: Prefix): Family {
  return prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast';
}
