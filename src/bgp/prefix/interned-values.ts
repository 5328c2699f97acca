// The values of a prefix table (prefix-table.ts) as small integer ids, each distinct value held
// once here with a count of the entries that refer to it.
//
// A table's values repeat: all the prefixes of one UPDATE share one path in an Adj-RIB-In, and
// almost every Loc-RIB entry points at the one source that holds it. A JS array of one reference
// per entry cost, at 10^5..10^6 entries, memory V8 fills as soon as it is allocated (every page of
// it faulted in at once, whether used or not), a write barrier per store, and a scan of the whole
// array by each full collection. An id per entry is an Int32Array, which the kernel maps in only
// as the entries are written and the collector never reads.

export class InternedValues<V> {
  /** By id; id 0 is no value. */
  private readonly values: (V | undefined)[] = [undefined];
  /** By id: how many entries refer to it. */
  private readonly refs: number[] = [0];
  private readonly free: number[] = [];
  private readonly idOf = new Map<V, number>();
  /** The last value taken and its id: a run of entries with one value costs no Map lookup. */
  private lastValue: V | undefined;
  private lastId = 0;

  /** The value of `id` (not 0). */
  get(id: number): V {
    return this.values[id] as V;
  }

  /** An entry now refers to `value`: returns its id, counted. */
  take(value: V): number {
    let id = this.lastId;
    if (id === 0 || value !== this.lastValue) {
      id = this.idOf.get(value) ?? this.add(value);
      this.lastValue = value;
      this.lastId = id;
    }
    this.refs[id]!++;
    return id;
  }

  /** An entry no longer refers to `id`; the value is forgotten with its last reference. Id 0 refers to nothing. */
  release(id: number): void {
    if (id === 0 || --this.refs[id]! > 0) return;
    this.idOf.delete(this.values[id] as V);
    this.values[id] = undefined;
    this.free.push(id);
    if (this.lastId === id) {
      this.lastId = 0;
      this.lastValue = undefined;
    }
  }

  /** How many distinct values are held. */
  get size(): number {
    return this.idOf.size;
  }

  private add(value: V): number {
    const id = this.free.pop() ?? this.values.length;
    this.values[id] = value;
    this.refs[id] = 0;
    this.idOf.set(value, id);
    return id;
  }
}
