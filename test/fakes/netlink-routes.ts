/**
 * The routes and nexthop objects of the in-memory kernel (IPv4 semantics, net/ipv4/fib_*.c and
 * net/ipv4/nexthop.c), as far as Twill's code relies on them:
 *   - a route is keyed by table, destination and metric (fib_table_insert): `add` (NLM_F_EXCL) is
 *     EEXIST when the key is taken by anyone, `replace` overwrites whoever's route is there;
 *     unset protocol means RTPROT_TWILL, as the real encoder stamps it;
 *   - `delete` (fib_table_delete) names a route by destination, table, protocol and, if given,
 *     metric, gateway, device and nexthop id; a route through a nexthop object matches only
 *     without a device or gateway (fib_nh_match). No match: ESRCH;
 *   - a gateway must be reachable through a connected route of the device (ENETUNREACH), unless
 *     onlink, which needs the device up (ENETDOWN); a device route needs the device up; a local
 *     address is no gateway (EINVAL); a missing device is ENODEV, a missing nexthop EINVAL;
 *   - nexthop objects: `add` is EEXIST on a taken id; the device must be up with carrier
 *     (ENETDOWN: stricter than routes); deleting one (ENOENT if absent) deletes its routes.
 *     Routes through one are listed with its gateway, device and onlink flag, as the kernel's
 *     nexthop_compat_mode dumps them;
 *   - nexthop groups (nh_check_attr_group, replace_nexthop, remove_nexthop_from_groups): members
 *     must exist and not be groups, each once (EINVAL); a group replaces only a group, a
 *     gateway only a gateway (EINVAL); a member deleted (or flushed with its device) leaves every
 *     group, and a group left empty goes with its routes. Routes through a group are listed with
 *     its members' next hops (multipath), or the one member's gateway;
 *   - multipath routes (RTA_MULTIPATH): each hop is checked as a gateway route's; the route is
 *     matched on delete by its first hop's device and gateway, or all its hops (fib_nh_match);
 *   - connected routes (protocol kernel, scope link) exist for each address below /32 of an up
 *     link; a link going down or away takes every route and nexthop through it along
 *     (fib_sync_down_dev, nexthop_flush_dev);
 *   - `nexthopSupport = false` is a kernel before 5.3: every nexthop request is EOPNOTSUPP.
 * Not modelled: the local table, IPv6 specifics, TOS, weights of multipath routes, dead hops (a
 * device going takes a whole multipath route along), resilient groups, linkdown flags, route caches.
 */
import { InvalidArgumentError } from '../../src/core/errors.js';
import { formatCidr, networkOf, parseCidr, parseIp, prefixContains } from '../../src/core/ip.js';
import {
  RT_TABLE_MAIN, RTPROT_TWILL, type GatewayNexthopSpec, type GroupNexthopSpec, type ListedRouteHop, type Nexthop, type NexthopSpec, type Route, type RouteFilter,
  type RouteHop, type RouteSpec,
} from '../../src/netlink/index.js';
import { singleHop } from '../../src/netlink/routes.js';
import { canonicalIp, canonicalPrefix, kernelError } from './netlink-errors.js';

/** What the route table needs to know about devices (netlink-links.ts answers). */
export interface DeviceView {
  exists(index: number): boolean;
  isUp(index: number): boolean;
  hasCarrier(index: number): boolean;
  isLocalAddress(ip: string): boolean;
}

/** A route as the fake keeps it: what the request said, validated and canonical. */
interface RouteState {
  readonly family: 4 | 6;
  readonly dst: string;
  readonly table: number;
  /** 0 = none (the kernel dumps no RTA_PRIORITY then). */
  readonly metric: number;
  readonly protocol: number;
  readonly scope: number;
  readonly gateway: string | undefined;
  readonly oif: number | undefined;
  readonly onlink: boolean;
  readonly prefsrc: string | undefined;
  readonly nexthopId: number | undefined;
  /** A plain multipath route's hops (two or more); gateway and oif are then undefined. */
  readonly multipath: readonly ListedRouteHop[] | undefined;
}

export const RTPROT_KERNEL = 2;
const SCOPES = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 } as const;
const RTN_UNICAST = 1;

export class FakeRoutes {
  private readonly routes = new Map<string, RouteState>();
  private readonly nexthops = new Map<number, Nexthop>();
  /** False: a kernel without nexthop objects (before Linux 5.3). */
  nexthopSupport = true;

  constructor(private readonly devices: DeviceView) {}

  // ---- routes ----------------------------------------------------------------------------------

  /** `ip route add`: NLM_F_CREATE | NLM_F_EXCL. */
  add(spec: RouteSpec, op = 'route.add'): void {
    const route = this.validate(spec, op);
    if (this.routes.has(keyOf(route))) throw kernelError(op, 'EEXIST', route.dst);
    this.routes.set(keyOf(route), route);
  }

  /** `ip route replace`: NLM_F_CREATE | NLM_F_REPLACE, over whoever's route holds the key. */
  replace(spec: RouteSpec, op = 'route.replace'): void {
    const route = this.validate(spec, op);
    this.routes.set(keyOf(route), route);
  }

  delete(given: RouteSpec, op = 'route.delete'): void {
    const spec = singleHop(given);
    const dst = canonicalPrefix(spec.dst);
    const table = spec.table ?? RT_TABLE_MAIN;
    const protocol = spec.protocol ?? RTPROT_TWILL;
    const gateway = spec.gateway === undefined ? undefined : canonicalIp(spec.gateway, 'route gateway');
    const found = [...this.routes].find(([, r]) => r.dst === dst && r.table === table && r.protocol === protocol
      && (spec.metric === undefined || spec.metric === 0 || r.metric === spec.metric)
      && (spec.prefsrc === undefined || r.prefsrc === canonicalIp(spec.prefsrc))
      && nexthopMatches(r, { gateway, oif: spec.oif, nexthopId: spec.nexthopId, multipath: spec.multipath }));
    if (!found) throw kernelError(op, 'ESRCH', spec.dst);
    this.routes.delete(found[0]);
  }

  list(filter: RouteFilter = {}): Route[] {
    const table = filter.table ?? RT_TABLE_MAIN;
    return [...this.routes.values()]
      .filter((r) => r.table === table && (filter.family === undefined || r.family === filter.family))
      .map((r) => this.report(r))
      .filter((r) => (filter.protocol === undefined || r.protocol === filter.protocol) && (filter.oif === undefined || r.oif === filter.oif));
  }

  // ---- nexthop objects -------------------------------------------------------------------------

  addNexthop(spec: NexthopSpec, op = 'nexthop.add'): void {
    const nexthop = this.validateNexthop(spec, op);
    if (this.nexthops.has(spec.id)) throw kernelError(op, 'EEXIST', `id ${spec.id}`, 'Nexthop id already exists');
    this.nexthops.set(spec.id, nexthop);
  }

  /** `ip nexthop replace`: over a nexthop of the same kind only (replace_nexthop(): EINVAL otherwise). */
  replaceNexthop(spec: NexthopSpec, op = 'nexthop.replace'): void {
    const nexthop = this.validateNexthop(spec, op);
    const old = this.nexthops.get(spec.id);
    if (old !== undefined && old.group !== nexthop.group) {
      throw kernelError(op, 'EINVAL', `id ${spec.id}`, old.group ? 'Can not replace a nexthop group with a nexthop.' : 'Can not replace a nexthop with a nexthop group.');
    }
    this.nexthops.set(spec.id, nexthop);
  }

  /** A nexthop of any shape (a group, a blackhole, somebody else's), as a test puts one in place. */
  seedNexthop(nexthop: Partial<Nexthop> & { id: number }): void {
    this.nexthops.set(nexthop.id, {
      family: 4, gateway: undefined, oif: undefined, protocol: 4, onlink: false, group: false, blackhole: false, ...nexthop,
    });
  }

  deleteNexthop(id: number, op = 'nexthop.delete'): void {
    this.requireSupport(op);
    if (!this.nexthops.has(id)) throw kernelError(op, 'ENOENT', `id ${id}`, 'Nexthop id does not exist');
    this.removeNexthops([id]);
  }

  listNexthops(op = 'nexthop.list'): Nexthop[] {
    this.requireSupport(op);
    return [...this.nexthops.values()].map((n) => ({ ...n, ...(n.members && { members: n.members.map((m) => ({ ...m })) }) }));
  }

  // ---- what links do to routes -----------------------------------------------------------------

  /** fib_sync_down_dev + nexthop_flush_dev: everything through the device goes. */
  flushDevice(index: number): void {
    this.removeNexthops([...this.nexthops.values()].filter((n) => n.oif === index).map((n) => n.id));
    for (const [key, r] of this.routes) {
      if (r.oif === index || r.multipath?.some((hop) => hop.oif === index)) this.routes.delete(key);
    }
  }

  /** The prefix route of an address (fib_add_ifaddr); none for a /32. */
  addConnected(index: number, cidrText: string): void {
    const cidr = parseCidr(cidrText);
    if (cidr.address.family !== 4 || cidr.prefixLength >= 32) return;
    const route: RouteState = {
      family: 4, dst: formatCidr({ address: networkOf(cidr), prefixLength: cidr.prefixLength }), table: RT_TABLE_MAIN, metric: 0,
      protocol: RTPROT_KERNEL, scope: SCOPES.link, gateway: undefined, oif: index, onlink: false, prefsrc: cidr.address.text, nexthopId: undefined,
      multipath: undefined,
    };
    if (!this.routes.has(keyOf(route))) this.routes.set(keyOf(route), route);
  }

  removeConnected(index: number, cidrText: string): void {
    const cidr = parseCidr(cidrText);
    const dst = formatCidr({ address: networkOf(cidr), prefixLength: cidr.prefixLength });
    for (const [key, r] of this.routes) {
      if (r.dst === dst && r.oif === index && r.protocol === RTPROT_KERNEL && r.prefsrc === cidr.address.text) this.routes.delete(key);
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * remove_nexthop(): the nexthops go, each out of every group holding it, a group left empty
   * with them (remove_nexthop_from_groups), and every route through any of them.
   */
  private removeNexthops(ids: readonly number[]): void {
    const gone = new Set<number>();
    const queue = [...ids];
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      if (gone.has(id) || !this.nexthops.delete(id)) continue;
      gone.add(id);
      for (const [groupId, g] of this.nexthops) {
        if (!g.members?.some((m) => m.id === id)) continue;
        const members = g.members.filter((m) => m.id !== id);
        if (members.length === 0) queue.push(groupId);
        else this.nexthops.set(groupId, { ...g, members });
      }
    }
    for (const [key, r] of this.routes) if (r.nexthopId !== undefined && gone.has(r.nexthopId)) this.routes.delete(key);
  }

  private requireSupport(op: string): void {
    if (!this.nexthopSupport) throw kernelError(op, 'EOPNOTSUPP');
  }

  /** The real encoder's checks (InvalidArgumentError), then the kernel's (fib_create_info, fib_check_nh). */
  private validate(given: RouteSpec, op: string): RouteState {
    const spec = singleHop(given);
    const dst = canonicalPrefix(spec.dst);
    const family = parseCidr(dst).address.family;
    const gateway = spec.gateway === undefined ? undefined : gatewayOf(spec.dst, spec.gateway, family);
    if (spec.nexthopId !== undefined && (gateway || spec.oif !== undefined || spec.onlink)) {
      throw new InvalidArgumentError('route', spec.dst, 'a route through a nexthop object takes its gateway, device and onlink from it');
    }
    if (spec.multipath !== undefined && (gateway || spec.oif !== undefined || spec.onlink || spec.nexthopId !== undefined)) {
      throw new InvalidArgumentError('route', spec.dst, 'a multipath route takes its gateways, devices and onlink flags from its next hops');
    }
    if (spec.multipath?.length === 0) throw new InvalidArgumentError('route', spec.dst, 'a multipath route needs at least one next hop');
    if (spec.onlink && spec.oif === undefined) throw new InvalidArgumentError('route', spec.dst, 'an onlink route needs an output interface (oif)');
    const onlink = spec.onlink ?? false;
    const multipath = spec.multipath?.map((hop): ListedRouteHop => ({ gateway: gatewayOf(spec.dst, hop.gateway, family).text, oif: hop.oif, onlink: hop.onlink ?? false, weight: 1 }));
    if (spec.nexthopId !== undefined) {
      if (!this.nexthopSupport || !this.nexthops.has(spec.nexthopId)) throw kernelError(op, 'EINVAL', spec.dst, 'Nexthop id does not exist');
    } else if (multipath !== undefined) {
      for (const hop of multipath) this.checkPath(op, spec.dst, hop.gateway, hop.oif, hop.onlink);
    } else if (spec.oif === undefined && gateway === undefined) {
      throw kernelError(op, 'EINVAL', spec.dst);
    } else {
      this.checkPath(op, spec.dst, gateway?.text, spec.oif, onlink);
    }
    const viaGateway = gateway !== undefined || spec.nexthopId !== undefined || multipath !== undefined;
    const scope = spec.scope !== undefined ? SCOPES[spec.scope] : viaGateway ? SCOPES.universe : SCOPES.link;
    return {
      family, dst, table: spec.table ?? RT_TABLE_MAIN, metric: spec.metric ?? 0, protocol: spec.protocol ?? RTPROT_TWILL, scope,
      gateway: gateway?.text, oif: spec.oif, onlink, prefsrc: spec.prefsrc === undefined ? undefined : canonicalIp(spec.prefsrc), nexthopId: spec.nexthopId,
      multipath,
    };
  }

  /** fib_check_nh: the device exists; an onlink gateway needs it up; another needs a connected route. */
  private checkPath(op: string, target: string, gateway: string | undefined, oif: number | undefined, onlink: boolean): void {
    if (oif !== undefined && !this.devices.exists(oif)) throw kernelError(op, 'ENODEV', target);
    if (gateway === undefined) {
      if (!this.devices.isUp(oif!)) throw kernelError(op, 'ENETDOWN', target, 'Device for nexthop is not up');
      return;
    }
    if (this.devices.isLocalAddress(gateway)) throw kernelError(op, 'EINVAL', target, 'Nexthop has invalid gateway');
    if (onlink) {
      if (!this.devices.isUp(oif!)) throw kernelError(op, 'ENETDOWN', target, 'Nexthop device is not up');
      return;
    }
    const host = parseCidr(`${gateway}/${gateway.includes(':') ? 128 : 32}`);
    const reachable = [...this.routes.values()].some((r) => r.table === RT_TABLE_MAIN && r.scope === SCOPES.link && r.nexthopId === undefined
      && r.gateway === undefined && (oif === undefined || r.oif === oif) && prefixContains(parseCidr(r.dst), host));
    if (!reachable) throw kernelError(op, 'ENETUNREACH', target, 'Nexthop has invalid gateway');
  }

  private validateNexthop(spec: NexthopSpec, op: string): Nexthop {
    return spec.group !== undefined ? this.validateGroup(spec, op) : this.validateGateway(spec, op);
  }

  private validateGateway(spec: GatewayNexthopSpec, op: string): Nexthop {
    const gateway = parseIp(spec.gateway, 'nexthop gateway');
    this.requireSupport(op);
    const target = `id ${spec.id} via ${gateway.text}`;
    // rtm_to_nh_config(): a missing device is "Invalid device index"; one down or without carrier is refused.
    if (!this.devices.exists(spec.oif)) throw kernelError(op, 'EINVAL', target, 'Invalid device index');
    if (!this.devices.isUp(spec.oif)) throw kernelError(op, 'ENETDOWN', target, 'Nexthop device is not up');
    if (!this.devices.hasCarrier(spec.oif)) throw kernelError(op, 'ENETDOWN', target, 'Carrier for nexthop device is down');
    this.checkPath(op, target, gateway.text, spec.oif, spec.onlink ?? false);
    return {
      id: spec.id, family: gateway.family, gateway: gateway.text, oif: spec.oif, protocol: spec.protocol ?? RTPROT_TWILL,
      onlink: spec.onlink ?? false, group: false, blackhole: false,
    };
  }

  /** The real encoder's checks, then nh_check_attr_group()'s; a group is listed without a family (AF_UNSPEC). */
  private validateGroup(spec: GroupNexthopSpec, op: string): Nexthop {
    if (spec.group.length === 0) throw new InvalidArgumentError('nexthop group', spec.id, 'needs at least one member');
    const weights = spec.group.map((m) => m.weight ?? 1);
    for (const w of weights) if (!Number.isInteger(w) || w < 1 || w > 256) throw new InvalidArgumentError('nexthop group weight', w, 'is not an integer from 1 to 256');
    this.requireSupport(op);
    const target = `id ${spec.id} group ${spec.group.map((m) => m.id).join('/')}`;
    const ids = spec.group.map((m) => m.id);
    if (new Set(ids).size !== ids.length) throw kernelError(op, 'EINVAL', target, 'Nexthop id can not be used twice in a group');
    for (const id of ids) {
      const member = this.nexthops.get(id);
      if (member === undefined) throw kernelError(op, 'EINVAL', target, 'Invalid nexthop id');
      if (member.group) throw kernelError(op, 'EINVAL', target, 'Hash-threshold group can not be a nexthop within a group');
    }
    return {
      id: spec.id, family: undefined, gateway: undefined, oif: undefined, protocol: spec.protocol ?? RTPROT_TWILL, onlink: false,
      group: true, members: spec.group.map((m, i) => ({ id: m.id, weight: weights[i]! })), blackhole: false,
    };
  }

  /**
   * What a dump says: a route through a nexthop shows its gateway, device and onlink flag too; one
   * through a group its members' (fib_dump_info(): one member as a plain route, more as multipath).
   */
  private report(r: RouteState): Route {
    const hops = r.nexthopId === undefined ? undefined : this.hopsOf(r.nexthopId);
    const single = hops?.length === 1 ? hops[0] : undefined;
    const multipath = hops === undefined ? r.multipath : hops.length > 1 ? hops : undefined;
    return {
      family: r.family, dst: r.dst, table: r.table, protocol: r.protocol, scope: r.scope, type: RTN_UNICAST,
      gateway: hops ? single?.gateway : r.gateway, oif: hops ? single?.oif : r.oif, onlink: single ? single.onlink : r.onlink,
      metric: r.metric === 0 ? undefined : r.metric, prefsrc: r.prefsrc, nexthopId: r.nexthopId,
      ...(multipath !== undefined && { multipath }),
    };
  }

  /** The next hops of a nexthop: its own gateway, or its members'. */
  private hopsOf(id: number): ListedRouteHop[] {
    const nh = this.nexthops.get(id);
    if (nh?.members === undefined) return nh?.oif === undefined ? [] : [{ gateway: nh.gateway, oif: nh.oif, onlink: nh.onlink, weight: 1 }];
    return nh.members.flatMap((m) => this.hopsOf(m.id).map((hop) => ({ ...hop, weight: m.weight })));
  }
}

function gatewayOf(dst: string, text: string, family: 4 | 6): { text: string; family: 4 | 6 } {
  const gateway = parseIp(text, 'route gateway');
  if (gateway.family !== family) throw new InvalidArgumentError('route gateway', text, `is IPv${gateway.family} but the destination ${dst} is IPv${family}`);
  return gateway;
}

const keyOf = (r: RouteState): string => `${r.table}|${r.dst}|${r.metric}`;

/**
 * fib_nh_match(): by nexthop id; a route through a nexthop object never by device, gateway or
 * hops; a multipath route by its first hop's device and gateway, or by all its hops in order.
 */
function nexthopMatches(r: RouteState, want: { gateway: string | undefined; oif: number | undefined; nexthopId: number | undefined; multipath: readonly RouteHop[] | undefined }): boolean {
  if (want.nexthopId !== undefined) return r.nexthopId === want.nexthopId;
  if (r.nexthopId !== undefined) return want.oif === undefined && want.gateway === undefined && want.multipath === undefined;
  const first = r.multipath?.[0] ?? r;
  if (want.oif !== undefined || want.gateway !== undefined) return (want.oif === undefined || first.oif === want.oif) && (want.gateway === undefined || first.gateway === want.gateway);
  if (want.multipath === undefined) return true;
  const hops = r.multipath ?? [r];
  return hops.length === want.multipath.length && want.multipath.every((h, i) => hops[i]!.oif === h.oif && hops[i]!.gateway === canonicalIp(h.gateway));
}
