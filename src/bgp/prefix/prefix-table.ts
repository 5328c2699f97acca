// A hash table keyed by numeric prefixes (prefix-list.ts), for the RIB's tables: Adj-RIB-In,
// Loc-RIB, Adj-RIB-Out. A Map keyed by prefix text costs, per prefix, the string (about 40
// bytes), hashing it, and three tagged slots; a full table is 10^5..10^6 of them, and the old
// RIB spent most of a table transfer in Map lookups and the garbage collector. Here a key is one
// or four 32-bit words plus a length in typed arrays (off the JS heap, never scanned by the
// collector), and so is each entry's value, an id of interned-values.ts: only the distinct values
// are JS references.
//
// Layout (CPython's compact dict): the entries are dense arrays in insertion order, so iterating
// the entries (next()) is insertion order exactly as with a Map (tests and the order of UPDATEs depend
// on it), and set() on a present key keeps its place. An index of `slots`, open addressing with
// linear probing and at most half full, holds per slot one int32: the entry number (24 bits) and
// the top 8 bits of the key's hash. Looking up a key that is absent, the common case while a table
// is learned, is one random memory access: the probe compares those hash bits inside the slot
// and reads an entry's key only when they match (one time in 256 for another key).
// When the entries are used up the index is rebuilt twice (or, while small, four times) as
// large, and entries do not move.
//
// Memory is the cost that counts: a table of 10^5 routes is a few MiB of fresh pages, and each
// first touch of a page is a fault the kernel serves (12 us each on the 2-core CI machine, a third
// of the time a 100,000-prefix transfer spent in the RIB). Hence one int32 per slot, not two, and
// values as ids in an Int32Array, which the kernel maps in as entries are written, where a JS
// array of references is filled (every page touched) as soon as it is allocated.
//
// A deleted entry stays, marked, until the next rebuild, which then also renumbers the entries.
// So deleting while iterating is safe; inserting into the table being iterated is not (a rebuild
// may renumber), and the RIB never does it.

import { strideOf, type PrefixList, type Stride } from './prefix-list.js';
import { formatPrefixWords } from './prefix-text.js';
import { InternedValues } from './interned-values.js';
import type { Family } from '../types.js';

/** Slots: empty, deleted, else the entry number plus FIRST in the low bits (TAG) and the hash's top byte above. */
const EMPTY = 0;
const DELETED = 1;
const FIRST = 2;
const TAG = 0xffffff;
/** Entries per table: their numbers plus FIRST must fit in TAG. */
const MAX_CAPACITY = 1 << 23;
/** The length of a deleted entry: no prefix is longer than 128. */
const GONE = 255;
const MIN_CAPACITY = 8;
/** Up to this many entries a full table grows fourfold, beyond it twofold. */
const FAST_GROWTH_BELOW = 1 << 16;

/** murmur3's 32-bit finaliser: every input bit reaches every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The hash of the prefix at `words[at..]` (an int32); tables of one family share it, so one hash serves several lookups. */
export function hashPrefix(words: Uint32Array, at: number, stride: Stride, len: number): number {
  let h = words[at]! ^ Math.imul(len + 1, 0x9e3779b1);
  if (stride === 4) {
    h = fmix(h) ^ words[at + 1]!;
    h = fmix(h) ^ words[at + 2]!;
    h = fmix(h) ^ words[at + 3]!;
  }
  return fmix(h);
}

function powerOfTwoAtLeast(n: number): number {
  let c = MIN_CAPACITY;
  while (c < n) c *= 2;
  return c;
}

/** The slot value of entry `e` whose key has hash `h`. */
function slotOf(e: number, h: number): number {
  return (h & ~TAG) | (e + FIRST);
}

/**
 * Puts entry `e` with hash `h` into the first free slot of its probe. A deleted slot may be taken
 * again: the key is absent, so no later slot of its probe holds it. Shared by insert() and the
 * rebuild, which runs rarely and so would run unoptimised: this way its loop calls code every
 * insertion has already made hot.
 */
function place(slots: Int32Array, mask: number, h: number, e: number): void {
  let i = h & mask;
  while ((slots[i]! & TAG) > DELETED) i = (i + 1) & mask;
  slots[i] = slotOf(e, h);
}

export class PrefixTable<V> {
  readonly stride: Stride;
  /** Per slot one int32 (see the file comment); twice as many slots as entries. */
  private slots = new Int32Array(2 * MIN_CAPACITY);
  private slotMask = 2 * MIN_CAPACITY - 1;
  /** Per entry, `stride` key words. */
  private words: Uint32Array;
  /** Per entry, the prefix length, or GONE once deleted. */
  private lens = new Uint8Array(MIN_CAPACITY);
  /** Per entry, its value's id in `values` (0 once deleted). */
  private ids = new Int32Array(MIN_CAPACITY);
  private values = new InternedValues<V>();
  /** Entries numbered since the last rebuild, deleted ones included. */
  private used = 0;
  private live = 0;

  constructor(readonly family: Family, capacity = MIN_CAPACITY) {
    this.stride = strideOf(family);
    this.words = new Uint32Array(MIN_CAPACITY * this.stride);
    if (capacity > MIN_CAPACITY) this.rebuild(powerOfTwoAtLeast(capacity));
  }

  get size(): number {
    return this.live;
  }

  /** The entries' key words (keyOffset(e) gives entry `e`'s). Replaced when the table grows: read, do not keep. */
  get keyWords(): Uint32Array {
    return this.words;
  }

  /** Where entry `e`'s key words start in keyWords. */
  keyOffset(e: number): number {
    return e * this.stride;
  }

  lengthAt(e: number): number {
    return this.lens[e]!;
  }

  hash(words: Uint32Array, at: number, len: number): number {
    return hashPrefix(words, at, this.stride, len);
  }

  /**
   * Reads the slot where a lookup of hash `h` starts, and returns its tag. A loop that calls this
   * for a few hundred prefixes before looking them up lets the CPU fetch all their cache lines
   * at once: the lookups themselves wait at each miss in turn, since what they do next depends
   * on what they read.
   */
  touch(h: number): number {
    return this.slots[h & this.slotMask]!;
  }

  /** The entry holding the prefix at `words[at..]`/`len`, or -1. `h` is its hashPrefix(). */
  find(words: Uint32Array, at: number, len: number, h = this.hash(words, at, len)): number {
    const slots = this.slots;
    const mask = this.slotMask;
    const top = h & ~TAG;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const slot = slots[i]!;
      if (slot === EMPTY) return -1;
      if ((slot & ~TAG) === top && (slot & TAG) > DELETED && this.keyIs((slot & TAG) - FIRST, words, at, len)) return (slot & TAG) - FIRST;
    }
  }

  get(words: Uint32Array, at: number, len: number, h?: number): V | undefined {
    const e = this.find(words, at, len, h);
    return e < 0 ? undefined : this.valueAt(e);
  }

  /** Adds or replaces; a replaced entry keeps its place in the order (as Map.set). Returns the entry. */
  set(words: Uint32Array, at: number, len: number, value: V, h = this.hash(words, at, len)): number {
    const e = this.find(words, at, len, h);
    if (e >= 0) {
      this.setValueAt(e, value);
      return e;
    }
    return this.insert(words, at, len, value, h);
  }

  /** Adds a prefix the caller knows is absent (find() said -1); may rebuild. Returns the entry. */
  insert(words: Uint32Array, at: number, len: number, value: V, h = this.hash(words, at, len)): number {
    if (this.used === this.lens.length) this.grow();
    const e = this.used++;
    const s = this.stride;
    this.words[e * s] = words[at]!;
    if (s === 4) {
      this.words[e * 4 + 1] = words[at + 1]!;
      this.words[e * 4 + 2] = words[at + 2]!;
      this.words[e * 4 + 3] = words[at + 3]!;
    }
    this.lens[e] = len;
    this.ids[e] = this.values.take(value);
    this.live++;
    place(this.slots, this.slotMask, h, e);
    return e;
  }

  /** Removes the prefix; returns its value, or undefined when it was absent. */
  delete(words: Uint32Array, at: number, len: number, h?: number): V | undefined {
    const e = this.find(words, at, len, h);
    return e < 0 ? undefined : this.deleteAt(e);
  }

  /** Removes entry `e` (a live one) and returns its value. Its key stays readable until the next insertion. */
  deleteAt(e: number): V {
    const id = this.ids[e]!;
    const value = this.values.get(id);
    const slots = this.slots;
    const mask = this.slotMask;
    const h = this.hash(this.words, e * this.stride, this.lens[e]!);
    const slot = slotOf(e, h);
    let i = h & mask;
    while (slots[i] !== slot) i = (i + 1) & mask;
    // DELETED, not EMPTY: probes for keys placed after this one must go on past it.
    slots[i] = DELETED;
    this.lens[e] = GONE;
    this.ids[e] = 0;
    this.values.release(id);
    this.live--;
    return value;
  }

  /** The value of live entry `e`. */
  valueAt(e: number): V {
    return this.values.get(this.ids[e]!);
  }

  setValueAt(e: number, value: V): void {
    const old = this.ids[e]!;
    // Taken before the old one is released: the same value must not be forgotten in between.
    this.ids[e] = this.values.take(value);
    this.values.release(old);
  }

  /** The first live entry at or after `e`, or -1: `for (let e = t.next(0); e >= 0; e = t.next(e + 1))`. */
  next(e: number): number {
    const lens = this.lens;
    for (; e < this.used; e++) if (lens[e] !== GONE) return e;
    return -1;
  }

  /** The canonical text of entry `e`'s prefix. */
  text(e: number): string {
    return formatPrefixWords(this.stride, this.words, e * this.stride, this.lens[e]!);
  }

  /** Appends entry `e`'s prefix to `list` (same family). */
  copyKey(e: number, list: PrefixList): void {
    list.push(this.words, e * this.stride, this.lens[e]!);
  }

  /** The entry of this table holding entry `e` of `other` (same family), or -1. */
  findEntryOf(other: PrefixTable<unknown>, e: number): number {
    return this.find(other.words, e * this.stride, other.lens[e]!);
  }

  /** Gives memory back after many deletions (a peer gone). Not while iterating: entries are renumbered. */
  compact(): void {
    if (this.lens.length > MIN_CAPACITY && this.live * 4 < this.lens.length) this.rebuild(powerOfTwoAtLeast(2 * this.live));
  }

  clear(): void {
    // Empty and at its smallest already (the Adj-RIB-Out clears its sets after every send): keep it.
    if (this.used === 0 && this.lens.length === MIN_CAPACITY) return;
    this.slots = new Int32Array(2 * MIN_CAPACITY);
    this.slotMask = 2 * MIN_CAPACITY - 1;
    this.words = new Uint32Array(MIN_CAPACITY * this.stride);
    this.lens = new Uint8Array(MIN_CAPACITY);
    this.ids = new Int32Array(MIN_CAPACITY);
    this.values = new InternedValues<V>();
    this.used = 0;
    this.live = 0;
  }

  private keyIs(e: number, words: Uint32Array, at: number, len: number): boolean {
    if (this.lens[e] !== len) return false;
    const own = this.words;
    if (this.stride === 1) return own[e] === words[at];
    const o = 4 * e;
    return own[o] === words[at] && own[o + 1] === words[at + 1] && own[o + 2] === words[at + 2] && own[o + 3] === words[at + 3];
  }

  /** The entries are used up: more room when more than half are live, else the same room without the deleted ones. */
  private grow(): void {
    const live = this.live;
    this.rebuild(powerOfTwoAtLeast(live < FAST_GROWTH_BELOW ? 4 * live : 2 * live));
  }

  /** Room for `capacity` entries (and twice as many slots); drops the deleted entries, renumbering the rest in order. */
  private rebuild(capacity: number): void {
    if (capacity > MAX_CAPACITY) throw new RangeError(`a prefix table holds at most ${MAX_CAPACITY} prefixes`);
    const { words, lens, ids, used, live, stride } = this;
    if (live < used) {
      // Compact the entries, in order.
      const keptWords = new Uint32Array(capacity * stride);
      const keptLens = new Uint8Array(capacity);
      const keptIds = new Int32Array(capacity);
      let n = 0;
      for (let e = 0; e < used; e++) {
        if (lens[e] === GONE) continue;
        for (let k = 0; k < stride; k++) keptWords[n * stride + k] = words[e * stride + k]!;
        keptLens[n] = lens[e]!;
        keptIds[n++] = ids[e]!;
      }
      this.words = keptWords;
      this.lens = keptLens;
      this.ids = keptIds;
    } else {
      this.words = new Uint32Array(capacity * stride);
      this.words.set(words.subarray(0, used * stride));
      this.lens = new Uint8Array(capacity);
      this.lens.set(lens.subarray(0, used));
      this.ids = new Int32Array(capacity);
      this.ids.set(ids.subarray(0, used));
    }
    this.used = this.live = live;
    // The index, from the entries' keys in order (hashing one is a few multiplications; reading
    // the old slots instead would be a random read per entry, as is writing the new one).
    const into = new Int32Array(2 * capacity);
    const mask = 2 * capacity - 1;
    const newWords = this.words;
    const newLens = this.lens;
    for (let e = 0; e < live; e++) place(into, mask, hashPrefix(newWords, e * stride, stride, newLens[e]!), e);
    this.slots = into;
    this.slotMask = mask;
  }
}
