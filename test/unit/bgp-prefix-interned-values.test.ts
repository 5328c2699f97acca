/**
 * The values of a prefix table as counted ids (src/bgp/prefix/interned-values.ts): one id per
 * distinct value, forgotten with its last reference, ids reused.
 */
import { describe, expect, it } from 'vitest';
import { InternedValues } from '../../src/bgp/prefix/interned-values.js';

describe('InternedValues', () => {
  it('gives one id per distinct value, counts references and forgets a value with its last', () => {
    const values = new InternedValues<object>();
    const a = { a: 1 };
    const b = { b: 2 };
    const ia = values.take(a);
    expect(values.take(a)).toBe(ia);
    const ib = values.take(b);
    expect(ib).not.toBe(ia);
    expect(values.take(a)).toBe(ia); // not the last taken: found through the map
    expect([ia, ib]).not.toContain(0);
    expect(values.get(ia)).toBe(a);
    expect(values.size).toBe(2);
    values.release(ia);
    values.release(ia);
    expect(values.size).toBe(2);
    values.release(ia);
    expect(values.size).toBe(1);
    expect(values.get(ia)).toBeUndefined();
    values.release(ib);
    expect(values.size).toBe(0);
    // Id 0 (a deleted entry's) refers to nothing: releasing it must not make 0 an id to hand out.
    values.release(0);
    expect(values.take(b)).not.toBe(0);
  });

  it('gives a new id to a value taken again after it was forgotten, even right after', () => {
    const values = new InternedValues<object>();
    const a = { a: 1 };
    const first = values.take(a);
    values.release(first);
    // The last-taken shortcut must not hand out the released id without counting it.
    const again = values.take(a);
    expect(values.get(again)).toBe(a);
    expect(values.size).toBe(1);
    const c = { c: 3 };
    const ic = values.take(c);
    expect(ic).not.toBe(again);
    values.release(again);
    expect(values.get(ic)).toBe(c);
    expect(values.size).toBe(1);
  });

  it('reuses the ids of forgotten values', () => {
    const values = new InternedValues<number>();
    const ids = Array.from({ length: 10 }, (_, i) => values.take(i));
    for (const id of ids) values.release(id);
    const again = Array.from({ length: 10 }, (_, i) => values.take(100 + i));
    expect(new Set(again)).toEqual(new Set(ids));
    expect(again.map((id) => values.get(id))).toEqual(Array.from({ length: 10 }, (_, i) => 100 + i));
    expect(values.size).toBe(10);
  });
});
