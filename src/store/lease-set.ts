/**
 * Diffing two views of the lease set (before/after a watch batch, or the cached set against a
 * re-list). Pure, so the rules are unit-tested without etcd:
 *
 * - a subnet only in `after` is added; only in `before` is removed (with its cached record, since
 *   an etcd delete carries no value);
 * - a subnet in both is updated only when its key or record changed: a put with the same value
 *   (a renewal, a restarted agent taking its subnet back) changes nothing a backend cares about.
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
 * Compares `before` and `after` over `subnets` (default: every subnet of either), in the order
 * given (or sorted, so results are deterministic).
 */
export function diffLeases(
  before: ReadonlyMap<string, SubnetLease>,
  after: ReadonlyMap<string, SubnetLease>,
  subnets?: Iterable<string>,
): LeaseDiff {
  const diff: LeaseDiff = { added: [], removed: [], updated: [] };
  const which = subnets ? [...subnets] : [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const subnet of which) {
    const b = before.get(subnet);
    const a = after.get(subnet);
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
