import { booleanOption, integerOption, rejectUnknownOptions } from '../options.js';
import { MAX_MTU, MIN_MTU, tunnelMtu } from '../tunnel-mtu.js';

/**
 * The ipip backend's options, from the network config's Backend object (flannel's names,
 * case-insensitive as Go's JSON decoding is):
 *
 *   {"Type": "ipip", "MTU": 1480, "DirectRouting": false}
 */
export interface IpipOptions {
  /** Device and pod MTU; undefined means "the external interface's MTU minus the overhead". */
  readonly mtu: number | undefined;
  /** Route to peers on the same L2 segment directly, without encapsulation. */
  readonly directRouting: boolean;
}

export const TYPE = 'ipip';
/** Twill's device; flannel's is flannel.ipip, so both can exist by name during a migration. */
export const DEVICE_NAME = 'twill.ipip';
/** Encapsulation overhead: the outer IPv4 header (RFC 2003 §3.1). */
export const IPIP_OVERHEAD = 20;

export function parseIpipOptions(raw: Readonly<Record<string, unknown>>): IpipOptions {
  rejectUnknownOptions(TYPE, raw, ['MTU', 'DirectRouting']);
  return Object.freeze({
    mtu: integerOption(TYPE, raw, 'MTU', MIN_MTU, MAX_MTU, `the external interface's MTU - ${IPIP_OVERHEAD}`),
    directRouting: booleanOption(TYPE, raw, 'DirectRouting'),
  });
}

/** The device's (and the pods') MTU: the option, else what the underlay can carry. */
export function ipipMtu(options: IpipOptions, externalMtu: number): number {
  return tunnelMtu(TYPE, IPIP_OVERHEAD, options.mtu, externalMtu);
}
