/**
 * One etcd key/value under subnets/ -> a SubnetLease, or a MalformedLease saying why not. Shared by
 * the listing and the watch so both judge keys the same way. Never throws.
 */
import { subnetFromKey, type KeyLayout } from './keys.js';
import { decodeLease } from './lease-codec.js';
import type { MalformedLease, SubnetLease } from './types.js';

export interface RawKv {
  readonly key: string;
  readonly value: Uint8Array | string;
  /** etcd's lease ID as etcd3 reports it (decimal string); "0" or "" means no lease. */
  readonly lease: string | undefined;
  readonly modRevision: string;
  /** The revision that created the key (etcd create_revision): the older of two overlapping leases wins. */
  readonly createRevision: string;
}

export type KvDecodeResult = { readonly ok: true; readonly lease: SubnetLease } | { readonly ok: false; readonly malformed: MalformedLease };

/** etcd's "no lease" is lease ID 0. */
export function leaseIdOf(raw: string | undefined): string | undefined {
  return raw === undefined || raw === '' || raw === '0' ? undefined : raw;
}

export function decodeKv(layout: KeyLayout, kv: RawKv, expiresAt?: number): KvDecodeResult {
  const name = subnetFromKey(layout, kv.key);
  // A refused name may still name subnets flannel honours (key-name.ts): those stay taken.
  if (!name.ok) return { ok: false, malformed: { key: kv.key, subnet: name.subnet, ipv6Subnet: name.ipv6Subnet, reason: name.reason } };
  const value = decodeLease(kv.value);
  // The key names its subnets even if its value is garbage: they are still taken.
  if (!value.ok) return { ok: false, malformed: { key: kv.key, subnet: name.subnet, ipv6Subnet: name.ipv6Subnet, reason: value.reason } };
  const etcdLeaseId = leaseIdOf(kv.lease);
  return {
    ok: true,
    lease: {
      subnet: name.subnet,
      ...(name.ipv6Subnet !== undefined && { ipv6Subnet: name.ipv6Subnet }),
      key: kv.key,
      record: value.record,
      etcdLeaseId,
      expiresAt: etcdLeaseId === undefined ? undefined : expiresAt,
      modRevision: kv.modRevision,
      createRevision: kv.createRevision,
    },
  };
}
