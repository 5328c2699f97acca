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
 *   - connected routes (protocol kernel, scope link) exist for each address below /32 of an up
 *     link; a link going down or away takes every route and nexthop through it along
 *     (fib_sync_down_dev, nexthop_flush_dev);
 *   - `nexthopSupport = false` is a kernel before 5.3: every nexthop request is EOPNOTSUPP.
 * Not modelled: the local table, IPv6 specifics, TOS, multipath, linkdown flags, route caches.
 */
import { InvalidArgumentError } from '../../src/core/errors.js';
import { formatCidr, networkOf, parseCidr, parseIp, prefixContains } from '../../src/core/ip.js';
import { RT_TABLE_MAIN, RTPROT_TWILL, type Nexthop, type NexthopSpec, type Route, type RouteFilter, type RouteSpec } from '../../src/netlink/index.js';
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

  delete(spec: RouteSpec, op = 'route.delete'): void {
    const dst = canonicalPrefix(spec.dst);
    const table = spec.table ?? RT_TABLE_MAIN;
    const protocol = spec.protocol ?? RTPROT_TWILL;
    const gateway = spec.gateway === undefined ? undefined : canonicalIp(spec.gateway, 'route gateway');
    const found = [...this.routes].find(([, r]) => r.dst === dst && r.table === table && r.protocol === protocol
      && (spec.metric === undefined || spec.metric === 0 || r.metric === spec.metric)
      && (spec.prefsrc === undefined || r.prefsrc === canonicalIp(spec.prefsrc))
      && nexthopMatches(r, { gateway, oif: spec.oif, nexthopId: spec.nexthopId }));
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

  replaceNexthop(spec: NexthopSpec, op = 'nexthop.replace'): void {
    this.nexthops.set(spec.id, this.validateNexthop(spec, op));
  }

  /** A nexthop of any shape (a group, a blackhole, somebody else's), as a test puts one in place. */
  seedNexthop(nexthop: Partial<Nexthop> & { id: number }): void {
    this.nexthops.set(nexthop.id, {
      family: 4, gateway: undefined, oif: undefined, protocol: 4, onlink: false, group: false, blackhole: false, ...nexthop,
    });
  }

  deleteNexthop(id: number, op = 'nexthop.delete'): void {
    this.requireSupport(op);
    if (!this.nexthops.delete(id)) throw kernelError(op, 'ENOENT', `id ${id}`, 'Nexthop id does not exist');
    for (const [key, r] of this.routes) if (r.nexthopId === id) this.routes.delete(key);
  }

  listNexthops(op = 'nexthop.list'): Nexthop[] {
    this.requireSupport(op);
    return [...this.nexthops.values()].map((n) => ({ ...n }));
  }

  // ---- what links do to routes -----------------------------------------------------------------

  /** fib_sync_down_dev + nexthop_flush_dev: everything through the device goes. */
  flushDevice(index: number): void {
    for (const [id, n] of this.nexthops) if (n.oif === index) this.nexthops.delete(id);
    for (const [key, r] of this.routes) {
      if (r.oif === index || (r.nexthopId !== undefined && !this.nexthops.has(r.nexthopId))) this.routes.delete(key);
    }
  }

  /** The prefix route of an address (fib_add_ifaddr); none for a /32. */
  addConnected(index: number, cidrText: string): void {
    const cidr = parseCidr(cidrText);
    if (cidr.address.family !== 4 || cidr.prefixLength >= 32) return;
    const route: RouteState = {
      family: 4, dst: formatCidr({ address: networkOf(cidr), prefixLength: cidr.prefixLength }), table: RT_TABLE_MAIN, metric: 0,
      protocol: RTPROT_KERNEL, scope: SCOPES.link, gateway: undefined, oif: index, onlink: false, prefsrc: cidr.address.text, nexthopId: undefined,
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

  private requireSupport(op: string): void {
    if (!this.nexthopSupport) throw kernelError(op, 'EOPNOTSUPP');
  }

  /** The real encoder's checks (InvalidArgumentError), then the kernel's (fib_create_info, fib_check_nh). */
  private validate(spec: RouteSpec, op: string): RouteState {
    const dst = canonicalPrefix(spec.dst);
    const family = parseCidr(dst).address.family;
    const gateway = spec.gateway === undefined ? undefined : parseIp(spec.gateway, 'route gateway');
    if (gateway && gateway.family !== family) throw new InvalidArgumentError('route gateway', spec.gateway, `is IPv${gateway.family} but the destination ${spec.dst} is IPv${family}`);
    if (spec.nexthopId !== undefined && (gateway || spec.oif !== undefined || spec.onlink)) {
      throw new InvalidArgumentError('route', spec.dst, 'a route through a nexthop object takes its gateway, device and onlink from it');
    }
    if (spec.onlink && spec.oif === undefined) throw new InvalidArgumentError('route', spec.dst, 'an onlink route needs an output interface (oif)');
    const onlink = spec.onlink ?? false;
    if (spec.nexthopId !== undefined) {
      if (!this.nexthopSupport || !this.nexthops.has(spec.nexthopId)) throw kernelError(op, 'EINVAL', spec.dst, 'Nexthop id does not exist');
    } else if (spec.oif === undefined && gateway === undefined) {
      throw kernelError(op, 'EINVAL', spec.dst);
    } else {
      this.checkPath(op, spec.dst, gateway?.text, spec.oif, onlink);
    }
    const scope = spec.scope !== undefined ? SCOPES[spec.scope] : gateway || spec.nexthopId !== undefined ? SCOPES.universe : SCOPES.link;
    return {
      family, dst, table: spec.table ?? RT_TABLE_MAIN, metric: spec.metric ?? 0, protocol: spec.protocol ?? RTPROT_TWILL, scope,
      gateway: gateway?.text, oif: spec.oif, onlink, prefsrc: spec.prefsrc === undefined ? undefined : canonicalIp(spec.prefsrc), nexthopId: spec.nexthopId,
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

  /** What a dump says: a route through a nexthop shows its gateway, device and onlink flag too. */
  private report(r: RouteState): Route {
    const nh = r.nexthopId === undefined ? undefined : this.nexthops.get(r.nexthopId);
    return {
      family: r.family, dst: r.dst, table: r.table, protocol: r.protocol, scope: r.scope, type: RTN_UNICAST,
      gateway: nh ? nh.gateway : r.gateway, oif: nh ? nh.oif : r.oif, onlink: nh ? nh.onlink : r.onlink,
      metric: r.metric === 0 ? undefined : r.metric, prefsrc: r.prefsrc, nexthopId: r.nexthopId,
    };
  }
}

const keyOf = (r: RouteState): string => `${r.table}|${r.dst}|${r.metric}`;

/** fib_nh_match(): by nexthop id; a route through a nexthop object never by device or gateway. */
function nexthopMatches(r: RouteState, want: { gateway: string | undefined; oif: number | undefined; nexthopId: number | undefined }): boolean {
  if (want.nexthopId !== undefined) return r.nexthopId === want.nexthopId;
  if (r.nexthopId !== undefined) return want.oif === undefined && want.gateway === undefined;
  return (want.oif === undefined || r.oif === want.oif) && (want.gateway === undefined || r.gateway === want.gateway);
}
