import { booleanOption, integerOption, optionError, rejectUnknownOptions } from '../options.js';
import { MAX_MTU, MIN_MTU, tunnelMtu } from '../tunnel-mtu.js';

/**
 * The vxlan backend's options, from the network config's Backend object:
 *
 *   {"Type": "vxlan", "VNI": 1, "Port": 8472, "MTU": 1450, "DirectRouting": false, "GBP": false}
 *
 * Keys are case-insensitive (flannel decodes with Go's encoding/json, which is). Unlike flannel's
 * parseVXLANConfig, every value is range-checked and unknown keys are rejected, so a typo such as
 * "DirectRoute" fails at `twillctl config set` instead of being ignored on every node.
 */
export interface VxlanOptions {
  /** VXLAN Network Identifier, 24 bits (RFC 7348 §5). */
  readonly vni: number;
  /** UDP destination port of the tunnel. */
  readonly port: number;
  /** Device and pod MTU; undefined means "the external interface's MTU minus the overhead". */
  readonly mtu: number | undefined;
  /** Route to peers on the same L2 segment directly, without encapsulation. */
  readonly directRouting: boolean;
  /** VXLAN Group Based Policy extension (carries the skb mark). */
  readonly gbp: boolean;
}

export const TYPE = 'vxlan';
export const DEFAULT_VNI = 1;
/**
 * Linux's (and flannel's) historical VXLAN port; IANA assigned 4789 later (RFC 7348 §5). A flannel
 * node listens on 8472, so Twill must default to it to interoperate during a migration.
 */
export const DEFAULT_PORT = 8472;
/**
 * Encapsulation overhead over the IPv4 underlay: outer IPv4 header 20 + UDP 8 + VXLAN 8 + inner
 * Ethernet 14 (RFC 7348 §5).
 */
export const VXLAN_OVERHEAD = 50;
/**
 * The same over the IPv6 underlay (twill-v6.<VNI>): the outer IPv6 header is 40 bytes. flannel
 * subtracts 50 for its flannel-v6 device too (flannel.md §3, "MTU", CR); the kernel's own default
 * for a VXLAN device over IPv6 is the lower device's MTU minus 70 (VXLAN6_HEADROOM).
 */
export const VXLAN6_OVERHEAD = 70;
export const MAX_VNI = 0xffffff;

const KNOWN = ['VNI', 'Port', 'MTU', 'DirectRouting', 'GBP', 'Learning'];

const integer = (raw: Readonly<Record<string, unknown>>, name: string, min: number, max: number, zeroMeans?: string): number | undefined =>
  integerOption(TYPE, raw, name, min, max, zeroMeans);
const boolean = (raw: Readonly<Record<string, unknown>>, name: string): boolean => booleanOption(TYPE, raw, name);

export function parseVxlanOptions(raw: Readonly<Record<string, unknown>>): VxlanOptions {
  rejectUnknownOptions(TYPE, raw, KNOWN);
  // flannel's configs may say "Learning": false (its default). Twill programs the FDB itself and
  // never turns learning on, so accept false for migration and refuse true.
  if (boolean(raw, 'Learning')) throw optionError(TYPE, 'Learning', true, 'is not supported: Twill programs the FDB itself (learning stays off)');
  const vni = integer(raw, 'VNI', 1, MAX_VNI) ?? DEFAULT_VNI;
  const port = integer(raw, 'Port', 1, 65535, `the default ${DEFAULT_PORT}`) ?? DEFAULT_PORT;
  const mtu = integer(raw, 'MTU', MIN_MTU, MAX_MTU, `the external interface's MTU - ${VXLAN_OVERHEAD}`);
  return Object.freeze({
    vni,
    port,
    mtu,
    directRouting: boolean(raw, 'DirectRouting'),
    gbp: boolean(raw, 'GBP'),
  });
}

/** The device name, `twill.<VNI>` (flannel uses flannel.<VNI>; the two can coexist by name). */
export function deviceName(vni: number): string {
  return `twill.${vni}`;
}

/** The IPv6 underlay's device name, `twill-v6.<VNI>` (flannel: flannel-v6.<VNI>). */
export function deviceNameV6(vni: number): string {
  return `twill-v6.${vni}`;
}

/** The device name of an address family's VTEP. */
export function deviceNameOf(family: 4 | 6, vni: number): string {
  return family === 4 ? deviceName(vni) : deviceNameV6(vni);
}

/** The VNI of a name that deviceName() or deviceNameV6() made ("twill.1", "twill-v6.1" -> 1), or undefined for any other name. */
export function vniOfDeviceName(name: string): number | undefined {
  const m = /^twill(?:-v6)?\.([1-9]\d{0,7})$/.exec(name);
  const vni = m ? Number(m[1]) : undefined;
  return vni !== undefined && vni <= MAX_VNI ? vni : undefined;
}

/** The encapsulation overhead over an underlay of `family`. */
export function overheadOf(family: 4 | 6): number {
  return family === 4 ? VXLAN_OVERHEAD : VXLAN6_OVERHEAD;
}

/** A device's MTU (twill.<VNI> by default, twill-v6.<VNI> with family 6): the option, else what the underlay can carry. */
export function deviceMtu(options: VxlanOptions, externalMtu: number, family: 4 | 6 = 4): number {
  return tunnelMtu(TYPE, overheadOf(family), options.mtu, externalMtu);
}
