/**
 * What the in-memory kernel (netlink-kernel.ts) answers with: real NetlinkErrors carrying the
 * errno the kernel returns, so code under test branches on them exactly as on the kernel's
 * (`isNetlinkError(err, 'EEXIST')`), and addresses in the canonical text the kernel's dumps give.
 */
import { constants } from 'node:os';
import { formatCidr, parseCidr, parseIp, parsePrefix } from '../../src/core/ip.js';
import { formatMac, parseMac } from '../../src/core/mac.js';
import { NetlinkError } from '../../src/netlink/index.js';

/** An errno name Node knows ("EEXIST", "ENETUNREACH"...). */
export type ErrnoName = keyof typeof constants.errno;

export function kernelError(op: string, code: ErrnoName, target?: string, extack?: string): NetlinkError {
  return new NetlinkError({ op, errno: constants.errno[code], target, extack });
}

/** "10.244.2.0/24" for a route destination; InvalidArgumentError for host bits, as the real encoder. */
export const canonicalPrefix = (text: string, what = 'route destination'): string => formatCidr(parsePrefix(text, what));
/** "10.244.2.1/24" for an interface address (host bits kept). */
export const canonicalCidr = (text: string): string => formatCidr(parseCidr(text, 'interface address'));
export const canonicalIp = (text: string, what?: string): string => parseIp(text, what).text;
export const canonicalMac = (text: string): string => formatMac(parseMac(text));
