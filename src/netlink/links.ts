import { closeSync, openSync, constants as fsc } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { validateIfname } from '../core/ifname.js';
import { formatIp, parseIp } from '../core/ip.js';
import { formatMac, parseMac } from '../core/mac.js';
import { NLM_F_CREATE, NLM_F_EXCL, type RtnlChannel } from './channel.js';
import * as C from './constants.js';
import { NetlinkError, UnsupportedByKernelError } from './errors.js';
import type { BridgeSpec, IpipSpec, Link, LinkChanges, VethSpec, VxlanInfo, VxlanSpec } from './types.js';
import { AttrWriter, attrStr, attrU16be, attrU32, attrU8, headerStruct, parseAttrs, type Attrs } from './wire.js';

/** struct ifinfomsg: family, pad, type, index, flags, change (16 bytes). */
function ifinfomsg(index = 0, flags = 0, change = 0): Buffer {
  const b = headerStruct(16);
  b.writeUInt8(C.AF_UNSPEC, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

export function parseLink(data: Buffer): Link {
  const index = data.readInt32LE(4);
  const flags = data.readUInt32LE(8);
  const attrs = parseAttrs(data, 16);
  const info = attrs.get(C.IFLA_LINKINFO);
  const infoAttrs = info ? parseAttrs(info) : undefined;
  const kind = infoAttrs ? attrStr(infoAttrs, C.IFLA_INFO_KIND) : undefined;
  const infoData = infoAttrs?.get(C.IFLA_INFO_DATA);
  const slaveKind = infoAttrs ? attrStr(infoAttrs, C.IFLA_INFO_SLAVE_KIND) : undefined;
  const slaveData = infoAttrs?.get(C.IFLA_INFO_SLAVE_DATA);
  const mac = attrs.get(C.IFLA_ADDRESS);
  return {
    index,
    name: attrStr(attrs, C.IFLA_IFNAME) ?? '',
    kind,
    mtu: attrU32(attrs, C.IFLA_MTU) ?? 0,
    mac: mac && mac.length === 6 ? formatMac(mac) : undefined,
    up: (flags & C.IFF_UP) !== 0,
    masterIndex: attrU32(attrs, C.IFLA_MASTER),
    linkIndex: attrU32(attrs, C.IFLA_LINK),
    linkNetnsId: attrs.has(C.IFLA_LINK_NETNSID) ? attrs.get(C.IFLA_LINK_NETNSID)!.readInt32LE(0) : undefined,
    vxlan: kind === 'vxlan' && infoData ? parseVxlan(parseAttrs(infoData)) : undefined,
    ipip: kind === 'ipip' && infoData ? parseIpip(parseAttrs(infoData)) : undefined,
    operUp: attrU8(attrs, C.IFLA_OPERSTATE) === C.IF_OPER_UP,
    hairpin: slaveKind === 'bridge' && slaveData ? (attrU8(parseAttrs(slaveData), C.IFLA_BRPORT_MODE) ?? 0) === 1 : undefined,
  };
}

function parseVxlan(a: Attrs): VxlanInfo {
  const local = a.get(C.IFLA_VXLAN_LOCAL) ?? a.get(C.IFLA_VXLAN_LOCAL6);
  return {
    vni: attrU32(a, C.IFLA_VXLAN_ID) ?? 0,
    port: attrU16be(a, C.IFLA_VXLAN_PORT) ?? 0,
    localIp: local ? formatIp(local) : undefined,
    underlayIndex: attrU32(a, C.IFLA_VXLAN_LINK),
    learning: (attrU8(a, C.IFLA_VXLAN_LEARNING) ?? 1) !== 0,
    gbp: a.has(C.IFLA_VXLAN_GBP),
  };
}

function parseIpip(a: Attrs): { localIp: string | undefined; underlayIndex: number | undefined } {
  const local = a.get(C.IFLA_IPTUN_LOCAL);
  return {
    localIp: local && local.readUInt32BE(0) !== 0 ? formatIp(local) : undefined,
    underlayIndex: attrU32(a, C.IFLA_IPTUN_LINK) || undefined,
  };
}

/** Fills the attributes every new link may carry: name, MTU, MAC. */
function common(w: AttrWriter, spec: { name: string; mtu?: number | undefined; mac?: string | undefined }): void {
  w.str(C.IFLA_IFNAME, validateIfname(spec.name));
  if (spec.mtu !== undefined) w.u32(C.IFLA_MTU, validateMtu(spec.mtu));
  if (spec.mac !== undefined) w.bytes(C.IFLA_ADDRESS, parseMac(spec.mac));
}

function validateMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new InvalidArgumentError('MTU', mtu, 'must be an integer 68..65535');
  }
  return mtu;
}

/** Opens a namespace file for IFLA_NET_NS_FD; the caller closes it once the kernel answered. */
function openNetnsFd(path: string): number {
  try {
    return openSync(path, fsc.O_RDONLY);
  } catch (err) {
    throw new NetlinkError({ op: 'netns.open', errno: Math.abs((err as NodeJS.ErrnoException).errno ?? 2), target: path }, 'no such network namespace');
  }
}

async function create(ch: RtnlChannel, kind: string, name: string, body: Buffer): Promise<void> {
  try {
    await ch.mutate(C.RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, { op: 'link.create', target: `${kind} ${name}` });
  } catch (err) {
    // rtnl_newlink() answers EOPNOTSUPP "Unknown device type" when no module provides the kind.
    if (err instanceof NetlinkError && err.code === 'EOPNOTSUPP') {
      throw new UnsupportedByKernelError({ op: err.op, errno: err.errno, extack: err.extack, target: err.target }, `${kind} devices`);
    }
    throw err;
  }
}

export async function createBridge(ch: RtnlChannel, spec: BridgeSpec): Promise<void> {
  const w = new AttrWriter(ifinfomsg());
  common(w, spec);
  w.nested(C.IFLA_LINKINFO, (li) => li.str(C.IFLA_INFO_KIND, 'bridge'));
  return create(ch, 'bridge', spec.name, w.finish());
}

export async function createVeth(ch: RtnlChannel, spec: VethSpec): Promise<void> {
  validateIfname(spec.peerName);
  const peerFd = spec.peerNetnsPath !== undefined ? openNetnsFd(spec.peerNetnsPath) : undefined;
  try {
    const w = new AttrWriter(ifinfomsg());
    common(w, spec);
    w.nested(C.IFLA_LINKINFO, (li) => {
      li.str(C.IFLA_INFO_KIND, 'veth');
      li.nested(C.IFLA_INFO_DATA, (data) => {
        // VETH_INFO_PEER carries a whole ifinfomsg plus the peer's own attributes.
        data.nested(C.VETH_INFO_PEER, (peer) => {
          common(peer, { name: spec.peerName, mtu: spec.mtu, mac: spec.peerMac });
          if (peerFd !== undefined) peer.u32(C.IFLA_NET_NS_FD, peerFd);
        }, ifinfomsg());
      });
    });
    await create(ch, 'veth', spec.name, w.finish());
  } finally {
    if (peerFd !== undefined) closeSync(peerFd);
  }
}

export async function createVxlan(ch: RtnlChannel, spec: VxlanSpec): Promise<void> {
  if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni > 0xffffff) {
    throw new InvalidArgumentError('VXLAN VNI', spec.vni, 'must be an integer 0..16777215 (24 bits, RFC 7348)');
  }
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
    throw new InvalidArgumentError('VXLAN port', spec.port, 'must be an integer 1..65535');
  }
  const local = spec.localIp !== undefined ? parseIp(spec.localIp, 'VXLAN local IP') : undefined;
  const w = new AttrWriter(ifinfomsg());
  common(w, spec);
  w.nested(C.IFLA_LINKINFO, (li) => {
    li.str(C.IFLA_INFO_KIND, 'vxlan');
    li.nested(C.IFLA_INFO_DATA, (d) => {
      d.u32(C.IFLA_VXLAN_ID, spec.vni);
      if (local) d.bytes(local.family === 4 ? C.IFLA_VXLAN_LOCAL : C.IFLA_VXLAN_LOCAL6, local.bytes);
      if (spec.underlayIndex !== undefined) d.u32(C.IFLA_VXLAN_LINK, spec.underlayIndex);
      d.u16be(C.IFLA_VXLAN_PORT, spec.port);
      d.u8(C.IFLA_VXLAN_LEARNING, spec.learning ? 1 : 0);
      if (spec.gbp) d.flag(C.IFLA_VXLAN_GBP);
    });
  });
  return create(ch, 'vxlan', spec.name, w.finish());
}

export async function createIpip(ch: RtnlChannel, spec: IpipSpec): Promise<void> {
  const local = spec.localIp !== undefined ? parseIp(spec.localIp, 'IPIP local IP') : undefined;
  if (local && local.family !== 4) throw new InvalidArgumentError('IPIP local IP', spec.localIp, 'IPIP carries IPv4 only');
  const w = new AttrWriter(ifinfomsg());
  common(w, spec);
  w.nested(C.IFLA_LINKINFO, (li) => {
    li.str(C.IFLA_INFO_KIND, 'ipip');
    li.nested(C.IFLA_INFO_DATA, (d) => {
      if (local) d.bytes(C.IFLA_IPTUN_LOCAL, local.bytes);
      if (spec.underlayIndex !== undefined) d.u32(C.IFLA_IPTUN_LINK, spec.underlayIndex);
    });
  });
  return create(ch, 'ipip', spec.name, w.finish());
}

export async function setLink(ch: RtnlChannel, index: number, changes: LinkChanges): Promise<void> {
  const upFlags = changes.up === undefined ? [0, 0] : [changes.up ? C.IFF_UP : 0, C.IFF_UP];
  const w = new AttrWriter(ifinfomsg(index, upFlags[0], upFlags[1]));
  if (changes.name !== undefined) w.str(C.IFLA_IFNAME, validateIfname(changes.name));
  if (changes.mtu !== undefined) w.u32(C.IFLA_MTU, validateMtu(changes.mtu));
  if (changes.masterIndex !== undefined) w.u32(C.IFLA_MASTER, changes.masterIndex);
  if (changes.mac !== undefined) w.bytes(C.IFLA_ADDRESS, parseMac(changes.mac));
  if (changes.hairpin !== undefined) {
    if (changes.masterIndex !== undefined) throw new InvalidArgumentError('link changes', 'hairpin with masterIndex', 'enslave the port first, then set hairpin');
    // `ip link set <port> type bridge_slave hairpin on`: the kernel hands the slave data to the
    // port's current master, so the kind must name the master's type.
    const hairpin = changes.hairpin;
    w.nested(C.IFLA_LINKINFO, (li) => {
      li.str(C.IFLA_INFO_SLAVE_KIND, 'bridge');
      li.nested(C.IFLA_INFO_SLAVE_DATA, (d) => d.u8(C.IFLA_BRPORT_MODE, hairpin ? 1 : 0));
    });
  }
  const nsFd = changes.netnsPath !== undefined ? openNetnsFd(changes.netnsPath) : undefined;
  try {
    if (nsFd !== undefined) w.u32(C.IFLA_NET_NS_FD, nsFd);
    await ch.mutate(C.RTM_NEWLINK, 0, w.finish(), { op: 'link.set', target: `index ${index}` });
  } finally {
    if (nsFd !== undefined) closeSync(nsFd);
  }
}

/** Deletes a link by index, or by name in the same single request (rtnl_dellink takes IFLA_IFNAME). */
export async function deleteLink(ch: RtnlChannel, ref: number | string): Promise<void> {
  if (typeof ref === 'number') return ch.mutate(C.RTM_DELLINK, 0, ifinfomsg(ref), { op: 'link.delete', target: `index ${ref}` });
  const w = new AttrWriter(ifinfomsg());
  w.str(C.IFLA_IFNAME, validateIfname(ref));
  return ch.mutate(C.RTM_DELLINK, 0, w.finish(), { op: 'link.delete', target: ref });
}

export async function getLinkByName(ch: RtnlChannel, name: string): Promise<Link | undefined> {
  const w = new AttrWriter(ifinfomsg());
  w.str(C.IFLA_IFNAME, validateIfname(name));
  try {
    return parseLink((await ch.get(C.RTM_GETLINK, w.finish(), { op: 'link.get', target: name })).data);
  } catch (err) {
    if (err instanceof NetlinkError && err.code === 'ENODEV') return undefined;
    throw err;
  }
}

export async function getLinkByIndex(ch: RtnlChannel, index: number): Promise<Link | undefined> {
  try {
    return parseLink((await ch.get(C.RTM_GETLINK, ifinfomsg(index), { op: 'link.get', target: `index ${index}` })).data);
  } catch (err) {
    if (err instanceof NetlinkError && err.code === 'ENODEV') return undefined;
    throw err;
  }
}

export async function listLinks(ch: RtnlChannel): Promise<Link[]> {
  const msgs = await ch.dump(C.RTM_GETLINK, ifinfomsg(), { op: 'link.list' });
  return msgs.filter((m) => m.type === C.RTM_NEWLINK).map((m) => parseLink(m.data));
}
