import { TwillError } from '../../core/errors.js';
import { parseCidr, prefixContains } from '../../core/ip.js';
import { parseMac } from '../../core/mac.js';
import { RT_TABLE_MAIN, type Link, type Route } from '../../netlink/index.js';
import { isUnicastMac } from './mac.js';

/**
 * Pure decisions of the takeover of a host that flanneld (vxlan) ran on (takeover.ts does the
 * I/O): whether the device in the way is flannel's and may be taken over, which VTEP MAC to keep,
 * and which routes are flannel's DirectRouting routes. No I/O, so each is unit-tested with fakes.
 */

/**
 * flanneld's device name (flannel pkg/backend/vxlan: `fmt.Sprintf("flannel.%v", vni)`, and
 * `flannel-v6.%v` for the IPv6 underlay's).
 */
export function flannelDeviceName(vni: number, family: 4 | 6 = 4): string {
  return family === 4 ? `flannel.${vni}` : `flannel-v6.${vni}`;
}

/**
 * flanneld writes its routes without a protocol, which the kernel stamps RTPROT_BOOT
 * (include/uapi/linux/rtnetlink.h), as it does for `ip route add`.
 */
export const RTPROT_BOOT = 3;
const RTN_UNICAST = 1;
/** The metric the kernel gives an IPv6 route added without one. */
const IP6_RT_PRIO_USER = 1024;
const RT_SCOPE_UNIVERSE = 0;

export interface TakeoverInput {
  /** Every link of the namespace. */
  readonly links: readonly Link[];
  /** Twill's VNI and port: only a device holding both is in the way (one per VNI and port). */
  readonly vni: number;
  readonly port: number;
  /** The tunnel source Twill will use (the external interface's address of the family). */
  readonly localIp: string;
  /** The VTEP's family: 6 looks for flannel-v6.<VNI> (default 4: flannel.<VNI>). */
  readonly family?: 4 | 6 | undefined;
  /** Pids of the flanneld processes running in this network namespace. */
  readonly flanneldPids: readonly number[];
}

/** flanneld's device, as found. */
export interface FlannelDevice {
  readonly name: string;
  readonly index: number;
  readonly mac: string | undefined;
  readonly localIp: string | undefined;
}

export type TakeoverDecision =
  /** No flannel device of this VNI and port: nothing to take over. */
  | { readonly action: 'none' }
  /** flanneld still runs: it owns the device and would recreate it (flannel #2247). */
  | { readonly action: 'refuse'; readonly error: TwillError }
  | {
    readonly action: 'take-over';
    readonly device: FlannelDevice;
    /** flannel's VTEP MAC, to keep; undefined when it cannot be kept (see why). */
    readonly adoptMac: string | undefined;
    /** Why the MAC is or is not kept, for the log. */
    readonly why: string;
  };

export function decideTakeover(input: TakeoverInput): TakeoverDecision {
  const name = flannelDeviceName(input.vni, input.family);
  const link = input.links.find((l) => l.name === name);
  // Only the device that holds our VNI and port is in the way; a flannel.<VNI> of another port
  // coexists with twill.<VNI> and is none of Twill's business.
  if (link?.kind !== 'vxlan' || link.vxlan?.vni !== input.vni || link.vxlan.port !== input.port) return { action: 'none' };
  if (input.flanneldPids.length > 0) {
    const pids = input.flanneldPids.join(', ');
    return {
      action: 'refuse',
      error: new TwillError('EFLANNELD_RUNNING',
        `flanneld (pid ${pids}) is running in this network namespace and owns ${name} (VNI ${input.vni}, port ${input.port}): ` +
        `stop flanneld first; once it is stopped, twilld takes over ${name}, the lease and the VTEP MAC`),
    };
  }
  const device: FlannelDevice = { name, index: link.index, mac: link.mac, localIp: link.vxlan.localIp };
  // Peers send to the MAC they read in this host's lease, to the lease's PublicIP. flannel's MAC
  // is only this host's to keep if flannel's tunnel started here: a device tunnelling from
  // another address was another VTEP, and its MAC may be published by another lease.
  if (link.vxlan.localIp !== input.localIp) {
    return { action: 'take-over', device, adoptMac: undefined, why: `${name} tunnels from ${link.vxlan.localIp ?? 'no address'}, not from ${input.localIp}: Twill publishes its own MAC and peers follow the lease` };
  }
  if (link.mac === undefined || !isUnicastMac(parseMac(link.mac))) {
    return { action: 'take-over', device, adoptMac: undefined, why: `${name} has no unicast MAC (${link.mac ?? 'none'}): Twill publishes its own and peers follow the lease` };
  }
  return { action: 'take-over', device, adoptMac: link.mac, why: `keeping ${name}'s MAC ${link.mac}, so peers (flanneld ones too) need no change` };
}

export interface DirectRouteContext {
  /** The cluster network of the routes' family ("10.244.0.0/16", or the IPv6 one). */
  readonly clusterNetwork: string;
  /** The external interface: flannel's direct routes leave by it. */
  readonly extIndex: number;
  /** True when the address is inside a connected subnet of the external interface (../on-link.ts). */
  readonly onLink: (ip: string) => boolean;
}

/**
 * A route exactly as flanneld's DirectRouting writes it for a peer on the same L2 segment
 * (flannel pkg/backend/vxlan vxlan_network.go: `netlink.Route{LinkIndex: ext, Dst: subnet, Gw:
 * PublicIP}`, RouteReplace): IPv4, main table, unicast, universe scope, protocol boot, no metric
 * or preferred source, no onlink flag, no nexthop object, out of the external interface, to a
 * subnet strictly inside the cluster network, via a gateway that is on-link there and not itself
 * inside the cluster network. Twill never overwrites another protocol's route, so these must go
 * with the takeover, and nothing that differs in any of these points is touched: an operator's
 * route with a metric, another table or protocol stays. The same for IPv6 (flannel's flannel-v6
 * DirectRouting: the IPv6 subnet via the PublicIPv6), where the kernel gives a route without a
 * metric its default 1024 (IP6_RT_PRIO_USER).
 */
export function isFlannelDirectRoute(route: Route, ctx: DirectRouteContext): boolean {
  const family = ctx.clusterNetwork.includes(':') ? 6 : 4;
  if (route.family !== family || route.protocol !== RTPROT_BOOT || route.table !== RT_TABLE_MAIN || route.type !== RTN_UNICAST) return false;
  if (route.scope !== RT_SCOPE_UNIVERSE || route.onlink || route.nexthopId !== undefined) return false;
  const metric = route.metric ?? 0;
  if (!(metric === 0 || (family === 6 && metric === IP6_RT_PRIO_USER)) || route.prefsrc !== undefined) return false;
  if (route.oif !== ctx.extIndex || route.gateway === undefined || !ctx.onLink(route.gateway)) return false;
  const cluster = parseCidr(ctx.clusterNetwork, 'cluster network');
  let dst;
  try {
    dst = parseCidr(route.dst, 'route destination');
  } catch {
    return false;
  }
  if (dst.prefixLength <= cluster.prefixLength || !prefixContains(cluster, dst)) return false;
  return !prefixContains(cluster, parseCidr(`${route.gateway}/${family === 4 ? 32 : 128}`, 'route gateway'));
}
