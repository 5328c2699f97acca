import { formatMac, parseMac } from '../../core/mac.js';
import { option } from '../options.js';
import { isUnicastMac } from './mac.js';

/**
 * The vxlan BackendData of a lease, in flannel's JSON shape (pkg/backend/vxlan vxlanLeaseAttrs),
 * so flannel nodes and Twill nodes can tunnel to each other:
 *
 *   {"VNI": 1, "VtepMAC": "aa:bb:cc:dd:ee:ff"}
 *
 * A dual-stack lease's BackendV6Data has the same shape, with the MAC of the IPv6 device
 * (flannel's newSubnetAttrs); an IPv6-only lease has no BackendData at all.
 */
export interface VxlanLeaseData {
  readonly VNI: number;
  readonly VtepMAC: string;
}

/** A usable remote VTEP, decoded from a remote lease. */
export interface RemoteVtep {
  readonly vni: number;
  /** Canonical lower-case "aa:bb:cc:dd:ee:ff". */
  readonly mac: string;
}

export type LeaseDataDecodeResult = { readonly ok: true; readonly vtep: RemoteVtep } | { readonly ok: false; readonly reason: string };

export function encodeLeaseData(vni: number, mac: string): VxlanLeaseData {
  return Object.freeze({ VNI: vni, VtepMAC: formatMac(parseMac(mac)) });
}

/** Keeps reasons short: a megabyte of garbage from etcd must not end up in a log line. */
function preview(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Validates another node's BackendData. It comes from etcd, i.e. from any writer, so this never
 * throws: an unusable value gives a reason, the lease is skipped and reported, and every other
 * peer is still programmed. Keys are case-insensitive like Go's JSON decoding; extra keys are
 * tolerated (a newer flannel may add some).
 *
 * An IPv6 entry's data is the lease's BackendV6Data, of the same shape (`family` 6 names it so in
 * the reasons).
 *
 * The VNI must equal ours: the receiving device only accepts packets with its own VNI (RFC 7348
 * §5), so entries for a peer on another VNI would black-hole traffic. flannel does not check.
 */
export function decodeLeaseData(raw: unknown, expectedVni: number, family: 4 | 6 = 4): LeaseDataDecodeResult {
  const field = family === 4 ? 'BackendData' : 'BackendV6Data';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, reason: `${field} ${preview(raw)} is not an object like {"VNI":1,"VtepMAC":"..."}` };
  }
  const data = raw as Readonly<Record<string, unknown>>;
  const vni = option(data, 'VNI');
  if (vni === undefined) return { ok: false, reason: `${field} has no VNI` };
  if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > 0xffffff) {
    return { ok: false, reason: `${field} VNI ${preview(vni)} is not an integer 0..16777215` };
  }
  if (vni !== expectedVni) return { ok: false, reason: `${field} VNI ${vni} differs from this network's VNI ${expectedVni}` };

  const macText = option(data, 'VtepMAC');
  if (macText === undefined) return { ok: false, reason: `${field} has no VtepMAC` };
  let mac: Buffer;
  try {
    if (typeof macText !== 'string') throw new TypeError('not a string');
    mac = parseMac(macText);
  } catch {
    return { ok: false, reason: `${field} VtepMAC ${preview(macText)} is not a MAC address` };
  }
  if (!isUnicastMac(mac)) return { ok: false, reason: `${field} VtepMAC ${macText} is not a unicast MAC` };
  return { ok: true, vtep: { vni, mac: formatMac(mac) } };
}
