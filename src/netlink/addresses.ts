import { broadcastOf, formatCidr, formatIp, parseCidr } from '../core/ip.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, type RtnlChannel } from './channel.js';
import * as C from './constants.js';
import type { Address } from './types.js';
import { AttrWriter, attrStr, headerStruct, parseAttrs } from './wire.js';

/** struct ifaddrmsg: family, prefixlen, flags, scope, index (8 bytes). */
function ifaddrmsg(family: number, prefixLength: number, index: number, flags = 0): Buffer {
  const b = headerStruct(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLength, 1);
  b.writeUInt8(flags, 2);
  b.writeUInt32LE(index, 4);
  return b;
}

/** Options of addAddress. */
export interface AddAddressOptions {
  /** IFA_F_NODAD (IPv6; `ip addr add ... nodad`): no duplicate address detection, usable at once. */
  readonly noDad?: boolean;
}

function encode(index: number, cidrText: string, opts: AddAddressOptions = {}): { body: Buffer; target: string } {
  const cidr = parseCidr(cidrText, 'interface address');
  const family = cidr.address.family === 4 ? C.AF_INET : C.AF_INET6;
  const flags = opts.noDad === true && family === C.AF_INET6 ? C.IFA_F_NODAD : 0;
  const w = new AttrWriter(ifaddrmsg(family, cidr.prefixLength, index, flags));
  // IPv4 wants IFA_LOCAL (the interface's own address) and IFA_ADDRESS (the peer, equal here).
  if (family === C.AF_INET) w.bytes(C.IFA_LOCAL, cidr.address.bytes);
  w.bytes(C.IFA_ADDRESS, cidr.address.bytes);
  // The subnet's broadcast address, as `ip addr add ... brd +` and Go's netlink (so the reference
  // plugins) set it; the kernel sets none by itself. /31 and /32 have none (RFC 3021).
  if (family === C.AF_INET && cidr.prefixLength < 31) w.bytes(C.IFA_BROADCAST, broadcastOf(cidr));
  return { body: w.finish(), target: `${formatCidr(cidr)} on index ${index}` };
}

export async function addAddress(ch: RtnlChannel, index: number, cidr: string, opts?: AddAddressOptions): Promise<void> {
  const { body, target } = encode(index, cidr, opts);
  await ch.mutate(C.RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, { op: 'address.add', target });
}

export async function replaceAddress(ch: RtnlChannel, index: number, cidr: string): Promise<void> {
  const { body, target } = encode(index, cidr);
  await ch.mutate(C.RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, body, { op: 'address.replace', target });
}

export async function deleteAddress(ch: RtnlChannel, index: number, cidr: string): Promise<void> {
  const { body, target } = encode(index, cidr);
  await ch.mutate(C.RTM_DELADDR, 0, body, { op: 'address.delete', target });
}

export function parseAddress(data: Buffer): Address {
  const family = data.readUInt8(0) === C.AF_INET ? 4 : 6;
  const prefixLength = data.readUInt8(1);
  const index = data.readUInt32LE(4);
  const attrs = parseAttrs(data, 8);
  const addr = attrs.get(C.IFA_LOCAL) ?? attrs.get(C.IFA_ADDRESS)!;
  return { index, family, cidr: `${formatIp(addr)}/${prefixLength}`, label: attrStr(attrs, C.IFA_LABEL) };
}

/** Every address in the namespace, or only those of one interface. */
export async function listAddresses(ch: RtnlChannel, index?: number): Promise<Address[]> {
  const msgs = await ch.dump(C.RTM_GETADDR, ifaddrmsg(C.AF_UNSPEC, 0, 0), { op: 'address.list' });
  return msgs
    .filter((m) => m.type === C.RTM_NEWADDR)
    .map((m) => parseAddress(m.data))
    .filter((a) => index === undefined || a.index === index);
}
