/**
 * Diffing two views of the lease set, each keyed by etcd key (before/after a watch batch, or the
 * cached set against a re-list). Pure, so the rules are unit-tested without etcd:
 *
 * - a key only in `after` is added; only in `before` is removed (with its cached record, since
 *   an etcd delete carries no value);
 * - a key in both is updated only when its record changed: a put with the same value (a
 *   renewal, a restarted agent taking its subnet back) changes nothing a backend cares about.
 */
import { sameRecord } from './lease-codec.js';
import type { SubnetLease } from './types.js';

export interface LeaseDiff {
  readonly added: SubnetLease[];
  readonly removed: SubnetLease[];
  readonly updated: SubnetLease[];
}

export function sameLease(a: SubnetLease, b: SubnetLease): boolean {
  return a.key === b.key && sameRecord(a.record, b.record);
}

/**
 * Compares `before` and `after` over `keys` (default: every key of either), in the order given
 * (or sorted, so results are deterministic).
 */
export function diffLeases(
  before: ReadonlyMap<string, SubnetLease>,
  after: ReadonlyMap<string, SubnetLease>,
  keys?: Iterable<string>,
): LeaseDiff {
  const diff: LeaseDiff = { added: [], removed: [], updated: [] };
  const which = keys ? [...keys] : [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const key of which) {
    const b = before.get(key);
    const a = after.get(key);
    if (b && a) {
      if (!sameLease(b, a)) diff.updated.push(a);
    } else if (a) {
      diff.added.push(a);
    } else if (b) {
      diff.removed.push(b);
    }
  }
  return diff;
}

export function isEmptyDiff(d: LeaseDiff): boolean {
  return d.added.length === 0 && d.removed.length === 0 && d.updated.length === 0;
}
