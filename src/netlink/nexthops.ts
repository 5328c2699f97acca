import { InvalidArgumentError } from '../core/errors.js';
import { formatIp, parseIp } from '../core/ip.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, type MutationRequest, type RtnlChannel } from './channel.js';
import * as C from './constants.js';
import { isNetlinkError } from './errors.js';
import type { NetlinkHandle } from './handle.js';
import type { GatewayNexthopSpec, GroupNexthopSpec, Nexthop, NexthopSpec } from './types.js';
import { AttrWriter, attrU32, headerStruct, parseAttrs } from './wire.js';

/**
 * Nexthop objects (RTM_*NEXTHOP, Linux 5.3+, include/uapi/linux/nexthop.h): a gateway and device
 * stored once under an id, which routes then name with RTA_NH_ID (`ip nexthop`, `ip route ...
 * nhid N`).
 *
 * Why Twill uses them: the kernel shares one fib_info among routes with equal attributes and
 * finds it in a hash that covers the output device, protocol, scope, metric and preferred source
 * but not the gateway (fib_info_hashfn() in net/ipv4/fib_semantics.c). Overlay routes differ only
 * by gateway, so every plain route lands in one bucket and each insert walks all the others:
 * 5,000 routes took 0.48 s and 10,000 took 1.77 s here (`ip -batch`). A route naming a nexthop is
 * hashed by the nexthop's id, so the same 10,000 routes plus their nexthops take 0.27 s.
 */

/** struct nhmsg: family, scope, protocol, resvd, flags (8 bytes). */
function nhmsg(family: number, protocol: number, flags: number): Buffer {
  const b = headerStruct(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(protocol, 2);
  b.writeUInt32LE(flags, 4);
  return b;
}

function encode(spec: NexthopSpec): Buffer {
  return spec.group !== undefined ? encodeGroup(spec) : encodeGateway(spec);
}

function encodeGateway(spec: GatewayNexthopSpec): Buffer {
  const gateway = parseIp(spec.gateway, 'nexthop gateway');
  const w = new AttrWriter(nhmsg(gateway.family === 4 ? C.AF_INET : C.AF_INET6, spec.protocol ?? C.RTPROT_TWILL, spec.onlink ? C.RTNH_F_ONLINK : 0), 48);
  w.u32(C.NHA_ID, spec.id);
  w.u32(C.NHA_OIF, spec.oif);
  w.bytes(C.NHA_GATEWAY, gateway.bytes);
  return w.finish();
}

/**
 * A group is AF_UNSPEC with neither device nor gateway, or the kernel refuses it ("Invalid family
 * for group", rtm_to_nh_config() in net/ipv4/nexthop.c); its family is its members'.
 */
function encodeGroup(spec: GroupNexthopSpec): Buffer {
  const w = new AttrWriter(nhmsg(C.AF_UNSPEC, spec.protocol ?? C.RTPROT_TWILL, 0), 16 + 8 * spec.group.length);
  w.u32(C.NHA_ID, spec.id);
  w.bytes(C.NHA_GROUP, groupEntries(spec));
  return w.finish();
}

/** NHA_GROUP: a struct nexthop_grp {u32 id; u8 weight; u8 resvd1; u16 resvd2} per member, weight stored minus one (uapi/linux/nexthop.h). */
function groupEntries(spec: GroupNexthopSpec): Buffer {
  if (spec.group.length === 0) throw new InvalidArgumentError('nexthop group', spec.id, 'needs at least one member');
  const b = headerStruct(8 * spec.group.length);
  spec.group.forEach((m, i) => {
    const weight = m.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 1 || weight > 256) throw new InvalidArgumentError('nexthop group weight', weight, 'is not an integer from 1 to 256');
    b.writeUInt32LE(m.id >>> 0, 8 * i);
    b.writeUInt8(weight - 1, 8 * i + 4);
  });
  return b;
}

/** The nexthop as `ip nexthop` writes it, for errors: "id 7 via 198.18.0.2", "id 9 group 7/8,2". */
export function describeNexthop(spec: NexthopSpec): string {
  if (spec.group === undefined) return `id ${spec.id} via ${spec.gateway}`;
  return `id ${spec.id} group ${spec.group.map((m) => (m.weight === undefined || m.weight === 1 ? `${m.id}` : `${m.id},${m.weight}`)).join('/')}`;
}

/** Creates nexthop `spec.id`, failing with EEXIST if the id is taken, like `ip nexthop add id N via GW dev D [onlink]` or `... group A/B`. */
export function addNexthopRequest(spec: NexthopSpec): MutationRequest {
  return { type: C.RTM_NEWNEXTHOP, flags: NLM_F_CREATE | NLM_F_EXCL, body: encode(spec), label: { op: 'nexthop.add', target: describeNexthop(spec) } };
}

/**
 * Creates or overwrites nexthop `spec.id`, like `ip nexthop replace`. The kernel replaces a group
 * only with a group and a gateway only with a gateway (replace_nexthop() in net/ipv4/nexthop.c).
 */
export function replaceNexthopRequest(spec: NexthopSpec): MutationRequest {
  return { type: C.RTM_NEWNEXTHOP, flags: NLM_F_CREATE | NLM_F_REPLACE, body: encode(spec), label: { op: 'nexthop.replace', target: describeNexthop(spec) } };
}

/**
 * Deletes nexthop `id` and, in the kernel, every route that names it; a group's member also
 * leaves every group (and a group left empty goes too, remove_nexthop_from_groups()).
 */
export function deleteNexthopRequest(id: number): MutationRequest {
  const w = new AttrWriter(nhmsg(C.AF_UNSPEC, 0, 0), 16);
  w.u32(C.NHA_ID, id);
  return { type: C.RTM_DELNEXTHOP, flags: 0, body: w.finish(), label: { op: 'nexthop.delete', target: `id ${id}` } };
}

export function parseNexthop(data: Buffer): Nexthop {
  const family = data.readUInt8(0);
  const attrs = parseAttrs(data, 8);
  const gw = attrs.get(C.NHA_GATEWAY);
  const group = attrs.get(C.NHA_GROUP);
  return {
    id: attrU32(attrs, C.NHA_ID) ?? 0,
    family: family === C.AF_INET ? 4 : family === C.AF_INET6 ? 6 : undefined,
    gateway: gw ? formatIp(gw) : undefined,
    oif: attrU32(attrs, C.NHA_OIF),
    protocol: data.readUInt8(2),
    onlink: (data.readUInt32LE(4) & C.RTNH_F_ONLINK) !== 0,
    group: group !== undefined,
    ...(group !== undefined && { members: parseGroup(group) }),
    blackhole: attrs.has(C.NHA_BLACKHOLE),
  };
}

function parseGroup(data: Buffer): { id: number; weight: number }[] {
  const members: { id: number; weight: number }[] = [];
  for (let off = 0; off + 8 <= data.length; off += 8) members.push({ id: data.readUInt32LE(off), weight: data.readUInt8(off + 4) + 1 });
  return members;
}

/** Every nexthop object of the namespace (groups, with their members, and blackholes included, flagged). */
export async function listNexthops(ch: RtnlChannel): Promise<Nexthop[]> {
  const msgs = await ch.dump(C.RTM_GETNEXTHOP, nhmsg(C.AF_UNSPEC, 0, 0), { op: 'nexthop.list' });
  return msgs.filter((m) => m.type === C.RTM_NEWNEXTHOP).map((m) => parseNexthop(m.data));
}

/**
 * The namespace's nexthop objects, or undefined when the kernel has none (before Linux 5.3 the
 * listing fails with EOPNOTSUPP, EAFNOSUPPORT or EINVAL): then Twill has none of its own either.
 */
export async function listNexthopsIfSupported(nl: Pick<NetlinkHandle, 'listNexthops'>): Promise<Nexthop[] | undefined> {
  try {
    return await nl.listNexthops();
  } catch (err) {
    if (isNetlinkError(err, 'EOPNOTSUPP') || isNetlinkError(err, 'EAFNOSUPPORT') || isNetlinkError(err, 'EINVAL')) return undefined;
    throw err;
  }
}
