import { formatIp, parseIp } from '../core/ip.js';
import { formatMac, parseMac } from '../core/mac.js';
import { NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE, type MutationRequest, type RtnlChannel } from './channel.js';
import * as C from './constants.js';
import type { FdbEntry, FdbSpec, Neighbour, NeighbourSpec } from './types.js';
import { AttrWriter, attrU32, headerStruct, parseAttrs } from './wire.js';

/** struct ndmsg: family, pad1, pad2, ifindex, state, flags, type (12 bytes). */
function ndmsg(family: number, index: number, state: number, flags: number): Buffer {
  const b = headerStruct(12);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  b.writeUInt8(flags, 10);
  return b;
}

// ---- ARP/NDP neighbours ------------------------------------------------------------------------

function encodeNeighbour(spec: NeighbourSpec, withMac: boolean): Buffer {
  const ip = parseIp(spec.ip, 'neighbour IP');
  const w = new AttrWriter(ndmsg(ip.family === 4 ? C.AF_INET : C.AF_INET6, spec.index, C.NUD_PERMANENT, 0), 48);
  w.bytes(C.NDA_DST, ip.bytes);
  if (withMac) w.bytes(C.NDA_LLADDR, parseMac(spec.mac));
  return w.finish();
}

/** A permanent neighbour entry (ip -> mac on a device), like `ip neigh replace ... nud permanent`. */
export function replaceNeighbourRequest(spec: NeighbourSpec): MutationRequest {
  return { type: C.RTM_NEWNEIGH, flags: NLM_F_CREATE | NLM_F_REPLACE, body: encodeNeighbour(spec, true), label: { op: 'neighbour.replace', target: spec.ip } };
}

export function deleteNeighbourRequest(spec: Omit<NeighbourSpec, 'mac'> & { mac?: string }): MutationRequest {
  return { type: C.RTM_DELNEIGH, flags: 0, body: encodeNeighbour({ ...spec, mac: '' }, false), label: { op: 'neighbour.delete', target: spec.ip } };
}

export function parseNeighbour(data: Buffer): Neighbour {
  const attrs = parseAttrs(data, 12);
  const dst = attrs.get(C.NDA_DST);
  const mac = attrs.get(C.NDA_LLADDR);
  const state = data.readUInt16LE(8);
  return {
    index: data.readInt32LE(4),
    ip: dst ? formatIp(dst) : '',
    mac: mac && mac.length === 6 ? formatMac(mac) : undefined,
    state,
    permanent: (state & C.NUD_PERMANENT) !== 0,
  };
}

/** Neighbour entries (IPv4 and IPv6), optionally of one device. */
export async function listNeighbours(ch: RtnlChannel, index?: number): Promise<Neighbour[]> {
  const out: Neighbour[] = [];
  for (const family of [C.AF_INET, C.AF_INET6]) {
    const msgs = await ch.dump(C.RTM_GETNEIGH, ndmsg(family, 0, 0, 0), { op: 'neighbour.list' });
    for (const m of msgs) {
      if (m.type !== C.RTM_NEWNEIGH) continue;
      const n = parseNeighbour(m.data);
      if (index === undefined || n.index === index) out.push(n);
    }
  }
  return out;
}

// ---- FDB entries on a VXLAN device (AF_BRIDGE, NTF_SELF) ----------------------------------------

function encodeFdb(spec: { index: number; mac: string; dst?: string | undefined }): Buffer {
  const w = new AttrWriter(ndmsg(C.AF_BRIDGE, spec.index, C.NUD_PERMANENT | C.NUD_NOARP, C.NTF_SELF), 48);
  w.bytes(C.NDA_LLADDR, parseMac(spec.mac));
  if (spec.dst !== undefined) w.bytes(C.NDA_DST, parseIp(spec.dst, 'FDB destination IP').bytes);
  return w.finish();
}

/**
 * Adds one more destination for `mac` (NLM_F_APPEND, like `bridge fdb append`). VXLAN keeps a list
 * of remotes per MAC; the all-zero MAC with several remotes is how head-end replication works.
 */
export function appendFdbRequest(spec: FdbSpec): MutationRequest {
  return { type: C.RTM_NEWNEIGH, flags: NLM_F_CREATE | NLM_F_APPEND, body: encodeFdb(spec), label: { op: 'fdb.append', target: `${spec.mac} dst ${spec.dst}` } };
}

/** Points `mac` at exactly one VTEP (`bridge fdb replace`). */
export function replaceFdbRequest(spec: FdbSpec): MutationRequest {
  return { type: C.RTM_NEWNEIGH, flags: NLM_F_CREATE | NLM_F_REPLACE, body: encodeFdb(spec), label: { op: 'fdb.replace', target: `${spec.mac} dst ${spec.dst}` } };
}

/** Deletes one (mac, dst) pair, or every destination of `mac` when `dst` is omitted. */
export function deleteFdbRequest(spec: { index: number; mac: string; dst?: string | undefined }): MutationRequest {
  return { type: C.RTM_DELNEIGH, flags: 0, body: encodeFdb(spec), label: { op: 'fdb.delete', target: `${spec.mac}${spec.dst ? ` dst ${spec.dst}` : ''}` } };
}

export function parseFdb(data: Buffer): FdbEntry {
  const attrs = parseAttrs(data, 12);
  const dst = attrs.get(C.NDA_DST);
  const mac = attrs.get(C.NDA_LLADDR);
  const state = data.readUInt16LE(8);
  const flags = data.readUInt8(10);
  return {
    index: data.readInt32LE(4),
    mac: mac ? formatMac(mac) : '',
    dst: dst ? formatIp(dst) : undefined,
    permanent: (state & C.NUD_PERMANENT) !== 0,
    self: (flags & C.NTF_SELF) !== 0,
    masterIndex: attrU32(attrs, C.NDA_MASTER),
  };
}

/** FDB entries of the namespace (bridge and VXLAN), optionally of one device. */
export async function listFdb(ch: RtnlChannel, index?: number): Promise<FdbEntry[]> {
  const msgs = await ch.dump(C.RTM_GETNEIGH, ndmsg(C.AF_BRIDGE, 0, 0, 0), { op: 'fdb.list' });
  return msgs
    .filter((m) => m.type === C.RTM_NEWNEIGH)
    .map((m) => parseFdb(m.data))
    .filter((e) => index === undefined || e.index === index);
}
