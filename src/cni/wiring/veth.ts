import { randomHex } from '../../core/random-hex.js';
import { isNetlinkError, writeSysctl, type Link, type Netlink } from '../../netlink/index.js';
import { CniCode, CniError } from '../spec/errors.js';

/** Routes in the pod are the pod's own configuration, like `ip route add`'s (RTPROT_BOOT). */
const RTPROT_BOOT = 3;
const NAME_ATTEMPTS = 5;
const DEFAULT_ROUTE = '0.0.0.0/0';
const DEFAULT_ROUTE_6 = '::/0';

export interface PodVethSpec {
  /** CNI_IFNAME, the interface inside the pod. */
  readonly ifname: string;
  readonly netnsPath: string;
  readonly mtu: number;
  /** The container end's MAC (capability "mac"); the kernel picks one otherwise. */
  readonly mac: string | undefined;
  readonly bridgeIndex: number;
  readonly hairpin: boolean;
}

export interface PodVeth {
  readonly host: Link;
  readonly container: Link;
}

/**
 * The pod's veth pair, created in one request with the container end already inside the pod's
 * namespace (so a half-made pair never shows up in the host), the host end named "veth" plus
 * 8 random hex digits like the reference plugin's, enslaved to the bridge and up.
 */
export async function createPodVeth(hostNl: Netlink, podNl: Netlink, spec: PodVethSpec): Promise<PodVeth> {
  // An existing CNI_IFNAME in the pod makes the creation fail with EEXIST (the pair is created
  // in one request, so nothing is left behind); only then is it worth a lookup to say which.
  let hostName = '';
  for (let attempt = 1; ; attempt++) {
    hostName = `veth${randomHex(4)}`;
    try {
      await hostNl.createVeth({ name: hostName, peerName: spec.ifname, peerNetnsPath: spec.netnsPath, mtu: spec.mtu, ...(spec.mac && { peerMac: spec.mac }) });
      break;
    } catch (err) {
      if (!isNetlinkError(err, 'EEXIST')) throw err;
      // Which name was taken: the pod's (created meanwhile) or our random host name?
      if (await podNl.getLink(spec.ifname)) throw new CniError(CniCode.INTERFACE_EXISTS, `interface ${spec.ifname} already exists in ${spec.netnsPath}`);
      if (attempt >= NAME_ATTEMPTS) throw err;
    }
  }
  try {
    const host = await hostNl.requireLink(hostName);
    await hostNl.setLink(host.index, { masterIndex: spec.bridgeIndex, up: true });
    if (spec.hairpin) await hostNl.setLink(host.index, { hairpin: true });
    // Name and MAC are all the result needs of either end, and setLink changed neither.
    const container = await podNl.requireLink(spec.ifname);
    return { host, container };
  } catch (err) {
    await deleteQuietly(hostNl, hostName);
    throw err;
  }
}

export interface PodAddressing {
  readonly ifname: string;
  readonly netnsPath: string;
  /** "10.244.3.5/24" */
  readonly cidr: string;
  readonly gateway: string;
  /** Destinations routed via the gateway, e.g. ["0.0.0.0/0", "10.244.0.0/16"]. */
  readonly routes: readonly string[];
  /**
   * More addresses of other families, each with its gateway and routes: the IPv6 one of a
   * dual-stack pod ("fc00:0:0:3::2/64" via "fc00:0:0:3::1", ["::/0", "fc00::/48"]). An IPv6-only
   * pod has its IPv6 address as `cidr` and none here.
   */
  readonly more?: readonly { readonly cidr: string; readonly gateway: string; readonly routes: readonly string[] }[];
}

/**
 * Addresses, link up and routes inside the pod; arp_notify and accept_dad as the reference plugin
 * sets them. IPv6 addresses skip duplicate address detection (nodad, and accept_dad=0 before
 * they are added), so they are usable at once, never "tentative". Returns the destinations whose
 * route the pod had already (see below).
 */
export async function configurePod(podNl: Netlink, link: Link, spec: PodAddressing): Promise<string[]> {
  const families = [{ cidr: spec.cidr, gateway: spec.gateway, routes: spec.routes }, ...(spec.more ?? [])];
  const v6 = families.some((f) => f.cidr.includes(':'));
  // Announce the (possibly reused) address at once so neighbours drop a stale MAC.
  writeSysctl(`net/ipv4/conf/${spec.ifname}/arp_notify`, 1, spec.netnsPath);
  // No IPv6 duplicate address detection on the pod's end: with hairpin mode the bridge echoes the
  // neighbour solicitations back and DAD fails (the reference bridge plugin turns it off for the
  // same reason), and a pending DAD timer only delays the link's deletion. Without IPv6 (booted
  // with ipv6.disable=1) the key does not exist, and there is nothing to turn off.
  try {
    writeSysctl(`net/ipv6/conf/${spec.ifname}/accept_dad`, 0, spec.netnsPath);
  } catch (err) {
    if (!isNetlinkError(err, 'ENOENT')) throw err;
    if (v6) throw new CniError(CniCode.INVALID_CONFIG, `the pod's interface ${spec.ifname} has no IPv6 (is the kernel booted with ipv6.disable=1?), and the host's lease is IPv6`);
  }
  // The pod's namespace may have IPv6 off by default (net.ipv6.conf.default.disable_ipv6=1), as
  // the reference bridge plugin allows for.
  if (v6) writeSysctl(`net/ipv6/conf/${spec.ifname}/disable_ipv6`, 0, spec.netnsPath);
  for (const f of families) {
    if (f.cidr.includes(':')) await podNl.addAddress(link.index, f.cidr, { noDad: true });
    else await podNl.addAddress(link.index, f.cidr);
  }
  await podNl.setUp(link.index);
  // Added, never replaced: a route already there is someone else's (another interface of the pod
  // reaching the same network) and stays. The default route is checked before anything is made
  // (refuseSecondDefaultRoute); taking that one over would move all of the pod's traffic.
  const existing: string[] = [];
  for (const f of families) {
    for (const dst of f.routes) {
      try {
        await podNl.addRoute({ dst, gateway: f.gateway, oif: link.index, protocol: RTPROT_BOOT });
      } catch (err) {
        if (!isNetlinkError(err, 'EEXIST')) throw err;
        if (dst === DEFAULT_ROUTE || dst === DEFAULT_ROUTE_6) {
          throw new CniError(CniCode.ROUTE_EXISTS, `${spec.netnsPath} got a${dst === DEFAULT_ROUTE_6 ? 'n IPv6' : ''} default route while twill was adding its own: twill does not take it over`);
        }
        existing.push(dst);
      }
    }
  }
  return existing;
}

/**
 * Fails (code 107) when the pod already has a default route, whatever its metric: one with a
 * higher metric would silently lose to ours. A pod with a network before twill's (Multus
 * style) keeps its route; twill as a second network sets isDefaultGateway to false.
 */
export async function refuseSecondDefaultRoute(podNl: Netlink, netnsPath: string, families: readonly (4 | 6)[] = [4]): Promise<void> {
  for (const family of families) {
    const dst = family === 4 ? DEFAULT_ROUTE : DEFAULT_ROUTE_6;
    const existing = (await podNl.listRoutes({ family })).find((r) => r.dst === dst);
    if (existing) refuseRoute(netnsPath, existing, family);
  }
}

function refuseRoute(netnsPath: string, existing: { gateway: string | undefined; oif?: number | undefined }, family: 4 | 6): never {
  const via = [existing.gateway && `via ${existing.gateway}`, existing.oif !== undefined && `on interface index ${existing.oif}`].filter(Boolean).join(' ');
  throw new CniError(CniCode.ROUTE_EXISTS,
    `${netnsPath} already has a${family === 6 ? 'n IPv6' : ''} default route${via ? ` (${via})` : ''}: twill does not take it over; ` +
    'set "isDefaultGateway": false when twill is not the pod\'s first network');
}

/** Deletes a link by name, ignoring one that is already gone. */
export async function deleteQuietly(nl: Netlink, name: string): Promise<boolean> {
  try {
    await nl.deleteLink(name);
    return true;
  } catch (err) {
    if (isNetlinkError(err, 'ENODEV')) return false;
    throw err;
  }
}
