/**
 * flannel's lease value (pkg/lease/lease.go LeaseAttrs), the JSON every node reads to route to
 * every other node:
 *
 *   {"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,...}}
 *
 * and in a dual-stack lease "PublicIPv6":"fd00::1" and "BackendV6Data":{...} after BackendData.
 *
 * Values come from etcd, i.e. from any writer, so decoding returns a reason rather than throwing
 * and is strict about the fields Twill needs (a lease without a usable PublicIP cannot be routed
 * to). Unknown extra fields (future additions) are tolerated: a newer flannel in the cluster must
 * not make its leases invisible to Twill.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidArgumentError } from '../core/errors.js';
import type { LeaseRecord } from './types.js';

export type LeaseDecodeResult = { readonly ok: true; readonly record: LeaseRecord } | { readonly ok: false; readonly reason: string };

/** An IPv6 address as Go's net.ParseIP takes it for flannel's PublicIPv6: no zone ("%eth0"). */
function isIpv6Address(v: unknown): v is string {
  return typeof v === 'string' && isIPv6(v) && !v.includes('%');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Keeps reasons short: a megabyte of garbage must not end up in an event. */
function preview(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function decodeLease(value: string | Uint8Array): LeaseDecodeResult {
  const text = typeof value === 'string' ? value : Buffer.from(value).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  if (!isPlainObject(parsed)) return { ok: false, reason: `not a JSON object: ${preview(parsed)}` };

  const publicIp = parsed['PublicIP'];
  if (publicIp === undefined) return { ok: false, reason: 'missing PublicIP' };
  // flannel's PublicIP is an ip.IP4, marshalled as a dotted quad (0.0.0.0 on IPv6-only nodes).
  if (typeof publicIp !== 'string' || !isIPv4(publicIp)) return { ok: false, reason: `PublicIP ${preview(publicIp)} is not an IPv4 address` };

  const publicIpv6 = parsed['PublicIPv6'] ?? null;
  if (publicIpv6 !== null && !isIpv6Address(publicIpv6)) {
    return { ok: false, reason: `PublicIPv6 ${preview(publicIpv6)} is neither null nor an IPv6 address` };
  }

  const backendType = parsed['BackendType'];
  if (backendType === undefined) return { ok: false, reason: 'missing BackendType' };
  if (typeof backendType !== 'string' || backendType === '') return { ok: false, reason: `BackendType ${preview(backendType)} is not a non-empty string` };

  // Absent and present-but-null differ on the wire (omitempty), so they stay apart here.
  const record: LeaseRecord = {
    publicIp, publicIpv6, backendType,
    ...('BackendData' in parsed && { backendData: parsed['BackendData'] }),
    ...('BackendV6Data' in parsed && { backendV6Data: parsed['BackendV6Data'] }),
  };
  return { ok: true, record };
}

/**
 * Encodes with flannel's field names in flannel's order (Go marshals struct fields in declaration
 * order). PublicIPv6 is always present (null when absent), as flannel writes it; BackendData and
 * BackendV6Data are omitted when undefined, as flannel's `json:",omitempty"` does for an empty
 * RawMessage. An IPv4-only lease is therefore byte for byte what it was before dual-stack.
 */
export function encodeLease(record: LeaseRecord): string {
  // Refuse to write what every other node would then skip as malformed.
  if (typeof record.publicIp !== 'string' || !isIPv4(record.publicIp)) {
    throw new InvalidArgumentError('lease PublicIP', record.publicIp, 'must be an IPv4 address');
  }
  const v6 = record.publicIpv6;
  if (v6 !== undefined && v6 !== null && !isIpv6Address(v6)) {
    throw new InvalidArgumentError('lease PublicIPv6', v6, 'must be an IPv6 address or null');
  }
  if (typeof record.backendType !== 'string' || record.backendType === '') {
    throw new InvalidArgumentError('lease BackendType', record.backendType, 'must be a non-empty string');
  }
  return toWire(record);
}

function toWire(record: LeaseRecord): string {
  const out: Record<string, unknown> = {
    PublicIP: record.publicIp,
    PublicIPv6: record.publicIpv6 ?? null,
    BackendType: record.backendType,
  };
  if (record.backendData !== undefined) out['BackendData'] = record.backendData;
  if (record.backendV6Data !== undefined) out['BackendV6Data'] = record.backendV6Data;
  return JSON.stringify(out);
}

/**
 * Same lease value for routing purposes: what a put with an unchanged value must not report.
 * Compares the wire form, so BackendData objects compare by content (in their key order, which
 * is stable for one writer).
 */
export function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return toWire(a) === toWire(b);
}
