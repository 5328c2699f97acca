import { InvalidArgumentError } from '../core/errors.js';

/** The smallest MTU an IPv4 link may have (RFC 791: every host must accept 68-byte datagrams). */
export const MIN_MTU = 68;
export const MAX_MTU = 65535;

/**
 * A tunnel device's (and its pods') MTU: the MTU option when set, else what the underlay can
 * carry after the encapsulation's `overhead` bytes (vxlan 50, ipip 20).
 */
export function tunnelMtu(type: string, overhead: number, optionMtu: number | undefined, externalMtu: number): number {
  if (optionMtu !== undefined) return optionMtu;
  const mtu = externalMtu - overhead;
  if (mtu < MIN_MTU) {
    throw new InvalidArgumentError(`${type} backend MTU`, mtu,
      `the external interface's MTU ${externalMtu} leaves less than ${MIN_MTU} after the ${overhead}-byte ${type.toUpperCase()} overhead; set the MTU option`);
  }
  return mtu;
}

/** The warning a backend logs when its MTU option is more than the underlay can carry, or undefined. */
export function tunnelMtuWarning(type: string, overhead: number, mtu: number, ext: { readonly name: string; readonly mtu: number }): string | undefined {
  if (mtu <= ext.mtu - overhead) return undefined;
  return `MTU option exceeds what ${ext.name} can carry after the ${overhead}-byte ${type.toUpperCase()} overhead: large packets will be fragmented or dropped`;
}
