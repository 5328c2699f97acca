import { InvalidArgumentError } from '../core/errors.js';
import { formatIp, parseIp, parsePrefix } from '../core/ip.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, type MutationRequest, type RtnlChannel } from './channel.js';
import * as C from './constants.js';
import type { ListedRouteHop, Route, RouteHop, RouteSpec } from './types.js';
import { align, AttrWriter, attrU32, headerStruct, parseAttrs } from './wire.js';

/** struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (12 bytes). */
function rtmsg(family: number, dstLen: number, table: number, protocol: number, scope: number, type: number, flags: number): Buffer {
  const b = headerStruct(12);
  b.writeUInt8(family, 0);
  b.writeUInt8(dstLen, 1);
  b.writeUInt8(table < 256 ? table : 0, 4);
  b.writeUInt8(protocol, 5);
  b.writeUInt8(scope, 6);
  b.writeUInt8(type, 7);
  b.writeUInt32LE(flags, 8);
  return b;
}

function encode(given: RouteSpec, forDelete: boolean): Buffer {
  const spec = singleHop(given);
  const dst = parsePrefix(spec.dst, 'route destination');
  const family = dst.address.family === 4 ? C.AF_INET : C.AF_INET6;
  const gateway = spec.gateway !== undefined ? parseIp(spec.gateway, 'route gateway') : undefined;
  if (gateway) checkGatewayFamily(spec.dst, spec.gateway, gateway.family, dst.address.family);
  if (spec.nexthopId !== undefined && (gateway || spec.oif !== undefined || spec.onlink)) {
    throw new InvalidArgumentError('route', spec.dst, 'a route through a nexthop object takes its gateway, device and onlink from it');
  }
  if (spec.multipath !== undefined && (gateway || spec.oif !== undefined || spec.onlink || spec.nexthopId !== undefined)) {
    throw new InvalidArgumentError('route', spec.dst, 'a multipath route takes its gateways, devices and onlink flags from its next hops');
  }
  if (spec.onlink && spec.oif === undefined) {
    throw new InvalidArgumentError('route', spec.dst, 'an onlink route needs an output interface (oif)');
  }
  const table = spec.table ?? C.RT_TABLE_MAIN;
  // A route without a gateway reaches its destination directly on the link.
  // A nexthop object or a multipath route carries gateways, so it is universe-scoped like a gateway route.
  const viaGateway = gateway !== undefined || spec.nexthopId !== undefined || spec.multipath !== undefined;
  const scope = spec.scope !== undefined ? C.ROUTE_SCOPES[spec.scope] : viaGateway ? C.ROUTE_SCOPES.universe : C.ROUTE_SCOPES.link;
  const protocol = spec.protocol ?? C.RTPROT_TWILL;
  // On delete, unset fields act as wildcards; keep the protocol so we only ever delete our own.
  const w = new AttrWriter(rtmsg(family, dst.prefixLength, table, protocol, forDelete ? C.ROUTE_SCOPES.nowhere : scope,
    C.RTN_UNICAST, spec.onlink && !forDelete ? C.RTNH_F_ONLINK : 0), 64);
  w.bytes(C.RTA_DST, dst.address.bytes);
  if (table >= 256) w.u32(C.RTA_TABLE, table);
  if (gateway) w.bytes(C.RTA_GATEWAY, gateway.bytes);
  if (spec.oif !== undefined) w.u32(C.RTA_OIF, spec.oif);
  if (spec.metric !== undefined) w.u32(C.RTA_PRIORITY, spec.metric);
  if (spec.prefsrc !== undefined) w.bytes(C.RTA_PREFSRC, parseIp(spec.prefsrc, 'route source').bytes);
  if (spec.nexthopId !== undefined) w.u32(C.RTA_NH_ID, spec.nexthopId);
  if (spec.multipath !== undefined) w.bytes(C.RTA_MULTIPATH, encodeMultipath(spec.dst, spec.multipath, dst.address.family));
  return w.finish();
}

function checkGatewayFamily(dst: string, gatewayText: string | undefined, gatewayFamily: 4 | 6, dstFamily: 4 | 6): void {
  if (gatewayFamily !== dstFamily) {
    throw new InvalidArgumentError('route gateway', gatewayText, `is IPv${gatewayFamily} but the destination ${dst} is IPv${dstFamily}`);
  }
}

/** A multipath route of one hop is that hop's plain route (RouteSpec.multipath): the kernel would store it so anyway. */
export function singleHop(spec: RouteSpec): RouteSpec {
  const [hop, ...more] = spec.multipath ?? [];
  if (hop === undefined || more.length > 0) return spec;
  const { multipath: _, ...rest } = spec;
  return { ...rest, gateway: hop.gateway, oif: hop.oif, ...(hop.onlink !== undefined && { onlink: hop.onlink }) };
}

/**
 * RTA_MULTIPATH: per hop a struct rtnexthop {u16 len; u8 flags; u8 hops (weight - 1); s32 ifindex}
 * and then the hop's own attributes, here RTA_GATEWAY (include/uapi/linux/rtnetlink.h,
 * fib_get_nhs() in net/ipv4/fib_semantics.c). Equal cost: every hop has weight 1.
 */
function encodeMultipath(dst: string, hops: readonly RouteHop[], dstFamily: 4 | 6): Buffer {
  if (hops.length === 0) throw new InvalidArgumentError('route', dst, 'a multipath route needs at least one next hop');
  return Buffer.concat(hops.map((hop) => {
    const gateway = parseIp(hop.gateway, 'route gateway');
    checkGatewayFamily(dst, hop.gateway, gateway.family, dstFamily);
    const rtnh = headerStruct(RTNH_SIZE);
    rtnh.writeUInt8(hop.onlink ? C.RTNH_F_ONLINK : 0, 2);
    rtnh.writeInt32LE(hop.oif, 4);
    const entry = new AttrWriter(rtnh, 32).bytes(C.RTA_GATEWAY, gateway.bytes).finish();
    entry.writeUInt16LE(entry.length, 0);
    return entry;
  }));
}

/** struct rtnexthop: len, flags, hops, ifindex (8 bytes). */
const RTNH_SIZE = 8;

function parseMultipath(data: Buffer): ListedRouteHop[] {
  const hops: ListedRouteHop[] = [];
  for (let off = 0; off + RTNH_SIZE <= data.length;) {
    const len = data.readUInt16LE(off);
    if (len < RTNH_SIZE || off + len > data.length) break;
    const gw = parseAttrs(data.subarray(off, off + len), RTNH_SIZE).get(C.RTA_GATEWAY);
    hops.push({
      gateway: gw ? formatIp(gw) : undefined, oif: data.readInt32LE(off + 4),
      onlink: (data.readUInt8(off + 2) & C.RTNH_F_ONLINK) !== 0, weight: data.readUInt8(off + 3) + 1,
    });
    off += align(len);
  }
  return hops;
}

/** Installs or overwrites the route to `spec.dst` (same table/metric), like `ip route replace`. */
export function replaceRouteRequest(spec: RouteSpec): MutationRequest {
  return { type: C.RTM_NEWROUTE, flags: NLM_F_CREATE | NLM_F_REPLACE, body: encode(spec, false), label: { op: 'route.replace', target: spec.dst } };
}

/**
 * Installs the route to `spec.dst` only if no route with the same destination, table and metric
 * exists (EEXIST otherwise), like `ip route add`: how Twill writes a route where it has none, so
 * a route of another owner that appeared since the listing is never overwritten.
 */
export function addRouteRequest(spec: RouteSpec): MutationRequest {
  return { type: C.RTM_NEWROUTE, flags: NLM_F_CREATE | NLM_F_EXCL, body: encode(spec, false), label: { op: 'route.add', target: spec.dst } };
}

export function deleteRouteRequest(spec: RouteSpec): MutationRequest {
  return { type: C.RTM_DELROUTE, flags: 0, body: encode(spec, true), label: { op: 'route.delete', target: spec.dst } };
}

export function parseRoute(data: Buffer): Route {
  const family = data.readUInt8(0) === C.AF_INET ? 4 : 6;
  const dstLen = data.readUInt8(1);
  const attrs = parseAttrs(data, 12);
  const dst = attrs.get(C.RTA_DST);
  const gw = attrs.get(C.RTA_GATEWAY);
  const src = attrs.get(C.RTA_PREFSRC);
  const multipath = attrs.get(C.RTA_MULTIPATH);
  return {
    family,
    dst: `${dst ? formatIp(dst) : family === 4 ? '0.0.0.0' : '::'}/${dstLen}`,
    gateway: gw ? formatIp(gw) : undefined,
    oif: attrU32(attrs, C.RTA_OIF),
    table: attrU32(attrs, C.RTA_TABLE) ?? data.readUInt8(4),
    protocol: data.readUInt8(5),
    scope: data.readUInt8(6),
    type: data.readUInt8(7),
    onlink: (data.readUInt32LE(8) & C.RTNH_F_ONLINK) !== 0,
    metric: attrU32(attrs, C.RTA_PRIORITY),
    prefsrc: src ? formatIp(src) : undefined,
    nexthopId: attrU32(attrs, C.RTA_NH_ID),
    ...(multipath !== undefined && { multipath: parseMultipath(multipath) }),
  };
}

export interface RouteFilter {
  readonly family?: 4 | 6;
  readonly table?: number;
  readonly protocol?: number;
  readonly oif?: number;
}

/** Routes of the namespace; by default the main table, IPv4 and IPv6. */
export async function listRoutes(ch: RtnlChannel, filter: RouteFilter = {}): Promise<Route[]> {
  const families = filter.family === 4 ? [C.AF_INET] : filter.family === 6 ? [C.AF_INET6] : [C.AF_INET, C.AF_INET6];
  const table = filter.table ?? C.RT_TABLE_MAIN;
  const out: Route[] = [];
  for (const family of families) {
    const msgs = await ch.dump(C.RTM_GETROUTE, rtmsg(family, 0, 0, 0, 0, 0, 0), { op: 'route.list' });
    for (const m of msgs) {
      if (m.type !== C.RTM_NEWROUTE) continue;
      const r = parseRoute(m.data);
      if (r.table !== table) continue;
      if (filter.protocol !== undefined && r.protocol !== filter.protocol) continue;
      if (filter.oif !== undefined && r.oif !== filter.oif) continue;
      out.push(r);
    }
  }
  return out;
}
