import { InvalidArgumentError } from '../core/errors.js';

/**
 * Field checks shared by the network config's parts (network-config.ts and its IPv6 part,
 * network-config-ipv6.ts): every error names the field and the bad value.
 */

export function fail(field: string, value: unknown, reason: string): never {
  throw new InvalidArgumentError(`network config ${field}`, value, reason);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Lower-cases the keys of an object, refusing two spellings of one key. */
export function foldKeys(obj: Record<string, unknown>, where: string): Map<string, { key: string; value: unknown }> {
  const out = new Map<string, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(obj)) {
    const folded = key.toLowerCase();
    const prior = out.get(folded);
    if (prior) fail(where, key, `given twice (as "${prior.key}" and "${key}")`);
    out.set(folded, { key, value });
  }
  return out;
}

export function integerField(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(field, value, `must be an integer ${min}..${max}`);
  }
  return value;
}

export function booleanField(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') fail(field, value, 'must be true or false');
  return value;
}

/** A config field by name, matched case-insensitively as Go's encoding/json does. */
export type FieldGetter = (name: string) => unknown;

/**
 * One address family's pod network and how it is carved into host subnets, all as canonical
 * text: "10.244.0.0/16" with /24 subnets "10.244.1.0/24".."10.244.255.0/24", or
 * "fc00::/48" with /64 subnets "fc00:0:0:1::/64".."fc00:0:0:ffff::/64".
 */
export interface SubnetRange {
  readonly network: string;
  readonly subnetLen: number;
  /** First and last leasable subnet. */
  readonly subnetMin: string;
  readonly subnetMax: string;
}
