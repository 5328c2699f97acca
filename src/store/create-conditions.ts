/**
 * The conditions of the transaction that creates a lease key (subnet-store.ts createLease). One key
 * holds both subnets of a dual-stack lease, as in flannel, so "the key does not exist" (flannel
 * registry.go createSubnet: If(Version(key) == 0)) no longer means "the subnets are free":
 *
 * - the key itself does not exist;
 * - IPv4: neither the plain key "<a.b.c.d>-<len>" nor any dual-stack key "<a.b.c.d>-<len>&..." of
 *   that IPv4 subnet exists (a range comparison). An IPv6-only lease's "0.0.0.0-0" is shared by
 *   every IPv6-only key, so it is not compared.
 * - IPv6: its subnet sits after the "&", so no prefix range finds the other keys holding it.
 *   Instead no key under subnets/ may have been created after the listing the subnet was picked
 *   from (its revision `freeAsOf`): the pick saw every key that existed then, and whatever appeared
 *   since fails the transaction, which the caller answers by listing and picking again. Renewals
 *   and rewrites of existing keys do not count (they keep their create revision).
 */
import { CompareResult, CompareTarget, type ICompare } from 'etcd3';
import { NO_IPV4_SUBNET } from './key-name.js';

/** The end of the range of keys that start with `prefix` (etcd's "prefix + 1"). */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all 0xff: every key after it (etcd's "\0" range end)
}

export interface CreateTarget {
  /** The full key to create. */
  readonly key: string;
  /** `${subnetsPrefix}<a.b.c.d>-<len>`: the key of the IPv4 subnet alone. */
  readonly ipv4Key: string;
  /** The canonical IPv4 subnet (NO_IPV4_SUBNET for an IPv6-only lease). */
  readonly subnet: string;
  readonly subnetsPrefix: string;
  /** Set for a lease with an IPv6 subnet: the revision of the listing it was picked from. */
  readonly freeAsOf: string | undefined;
}

function absent(key: string, rangeEnd?: Buffer): ICompare {
  return { key: Buffer.from(key), ...(rangeEnd && { range_end: rangeEnd }), target: CompareTarget.Version, result: CompareResult.Equal, version: 0 };
}

export function createConditions(t: CreateTarget): ICompare[] {
  const conditions = [absent(t.key)];
  if (t.subnet !== NO_IPV4_SUBNET) {
    if (t.ipv4Key !== t.key) conditions.push(absent(t.ipv4Key));
    const dualStack = `${t.ipv4Key}&`;
    conditions.push(absent(dualStack, prefixRangeEnd(Buffer.from(dualStack))));
  }
  if (t.freeAsOf !== undefined) {
    const prefix = Buffer.from(t.subnetsPrefix);
    conditions.push({
      key: prefix, range_end: prefixRangeEnd(prefix), target: CompareTarget.Create, result: CompareResult.Less,
      create_revision: (BigInt(t.freeAsOf) + 1n).toString(),
    });
  }
  return conditions;
}
