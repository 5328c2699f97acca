/**
 * A simulated cluster: N "hosts" (network namespaces) on one L2 underlay, plus "pods"
 * (namespaces with a veth into a host), built with Twill's netlink layer.
 *
 *            underlay ns (twt-..-ul)                 host ns (twt-..-h0)         pod ns (twt-..-h0p1)
 *   +-------------------------------+      +-----------------------------+      +------------------+
 *   | br0 ── ul-h0  ul-h1  ul-h2     | ───  | eth0 198.18.0.1/24          | ───  | eth0 10.244.0.2  |
 *   +-------------------------------+      | <tw....p> (pod's host side)  |      +------------------+
 *                                          +-----------------------------+
 *
 *   const c = await createCluster({ hosts: 3 });          // registered with the cleanup registry
 *   const [h0, , h2] = c.hosts;
 *   expect(await h0.ping(h2!.underlayIp)).toBe(true);
 *   const pod = await c.addPod(h0!, { ip: '10.244.0.2/24', gateway: '10.244.0.1' });
 *   await c.destroy();                                    // idempotent; also done by cleanup
 *
 * Host i has underlay address <network + i + 1>/<prefix> on eth0 (198.18.0.1/24 for host 0 with
 * the default underlay), lo up and net.ipv4.ip_forward=1. Nothing is created in the root namespace.
 */
import { networkOf, parseCidr, prefixContains } from '../../src/core/ip.js';
import { bigIntToIpv6, bytesToBigInt } from '../../src/ipam/ipv6.js';
import { isNetlinkError } from '../../src/netlink/index.js';
import { cleanup, CleanupRegistry } from './cleanup.js';
import { groupId, ifName } from './names.js';
import { createTestNetns, RTPROT_BOOT, TestNetns } from './netns.js';

/** Benchmarking range (RFC 2544) reserved for test underlays by the test-machine rules. */
export const UNDERLAY_RANGE = '198.18.0.0/15';
export const DEFAULT_UNDERLAY_CIDR = '198.18.0.0/24';
/** Name of the Linux bridge inside the underlay namespace. */
export const UNDERLAY_BRIDGE = 'br0';

export interface ClusterOptions {
  /** Number of host namespaces (>= 1). */
  readonly hosts: number;
  /** Underlay subnet, inside 198.18.0.0/15; default 198.18.0.0/24. */
  readonly underlayCidr?: string | undefined;
  /** MTU of the underlay (bridge, veths, host eth0); default 1500. */
  readonly mtu?: number | undefined;
  /** Name of the underlay interface inside each host; default "eth0". */
  readonly hostIfname?: string | undefined;
  /**
   * An IPv6 underlay beside the IPv4 one, inside fd00::/8 or 2001:db8::/32 (e.g. "fd00:18::/64"):
   * host i gets <network + i + 1> on eth0, without duplicate address detection (usable at once),
   * and IPv6 forwarding on.
   */
  readonly underlayCidrV6?: string | undefined;
  /** Give eth0 its IPv4 underlay address (default true); false makes an IPv6-only host (needs underlayCidrV6). */
  readonly underlayIpv4?: boolean | undefined;
  /** Set net.ipv4.ip_forward=1 in each host (default true). */
  readonly ipForward?: boolean | undefined;
  /** Registry that destroys the cluster; default the global one. */
  readonly registry?: CleanupRegistry | undefined;
}

export interface PodOptions {
  /** Pod address with prefix on the pod's interface, e.g. "10.244.1.2/24". None if omitted. */
  readonly ip?: string | undefined;
  /** Default route of the pod via this address (installed onlink, so a /32 pod works too). */
  readonly gateway?: string | undefined;
  /** A second, IPv6 address with prefix ("fd10:0:0:1::2/64"), added without duplicate address detection. */
  readonly ipv6?: string | undefined;
  /** The pod's IPv6 default route via this address (onlink). */
  readonly gatewayV6?: string | undefined;
  /** Pod-side interface name; default "eth0". */
  readonly ifname?: string | undefined;
  /** Host-side veth name (must be unique in the host); default a fresh `tw....p` name. */
  readonly hostIfname?: string | undefined;
  /** Veth MTU; default the cluster's MTU. */
  readonly mtu?: number | undefined;
  /** Enslave the host side to this existing bridge in the host namespace (bridge-mode CNI). */
  readonly bridge?: string | undefined;
  /** Add `<pod ip>/32 dev <hostIfname> scope link` in the host (ptp-mode CNI). Needs `ip`. */
  readonly hostRoute?: boolean | undefined;
  /** Namespace label; default "h<host>p<n>". */
  readonly label?: string | undefined;
}

export interface HostInfo {
  /** Position in cluster.hosts. */
  readonly index: number;
  /** Underlay address, e.g. "198.18.0.1". */
  readonly underlayIp: string;
  /** Underlay address with prefix, e.g. "198.18.0.1/24". */
  readonly underlayCidr: string;
  /** Underlay interface inside the host ("eth0"). */
  readonly underlayIfname: string;
  /** The veth end on the underlay bridge, inside the underlay namespace ("ul-h0"). */
  readonly bridgePort: string;
  /** IPv6 underlay address ("fd00:18::1") with underlayCidrV6. */
  readonly underlayIpv6?: string | undefined;
}

/** A host namespace on the underlay. */
export class Host extends TestNetns implements HostInfo {
  readonly index: number;
  readonly underlayIp: string;
  readonly underlayCidr: string;
  readonly underlayIfname: string;
  readonly bridgePort: string;
  readonly underlayIpv6: string | undefined;

  constructor(ns: TestNetns, info: HostInfo) {
    super(TestNetns.initOf(ns));
    this.index = info.index;
    this.underlayIp = info.underlayIp;
    this.underlayCidr = info.underlayCidr;
    this.underlayIfname = info.underlayIfname;
    this.bridgePort = info.bridgePort;
    this.underlayIpv6 = info.underlayIpv6;
  }
}

export interface PodInfo<H extends TestNetns = TestNetns> {
  /** The namespace the pod's veth leads to (a cluster Host, or any TestNetns). */
  readonly host: H;
  /** Pod-side interface ("eth0"). */
  readonly ifname: string;
  /** Host-side veth, inside the host namespace. */
  readonly hostIfname: string;
  /** Address without prefix, if one was given. */
  readonly ip: string | undefined;
  /** Address with prefix, if one was given. */
  readonly cidr: string | undefined;
  readonly gateway: string | undefined;
  /** IPv6 address without prefix, if one was given. */
  readonly ipv6?: string | undefined;
}

/** A pod namespace with one veth into its host. */
export class Pod<H extends TestNetns = TestNetns> extends TestNetns implements PodInfo<H> {
  readonly host: H;
  readonly ifname: string;
  readonly hostIfname: string;
  readonly ip: string | undefined;
  readonly cidr: string | undefined;
  readonly gateway: string | undefined;
  readonly ipv6: string | undefined;

  constructor(ns: TestNetns, info: PodInfo<H>) {
    super(TestNetns.initOf(ns));
    this.host = info.host;
    this.ifname = info.ifname;
    this.hostIfname = info.hostIfname;
    this.ip = info.ip;
    this.cidr = info.cidr;
    this.gateway = info.gateway;
    this.ipv6 = info.ipv6;
  }
}

export interface Cluster {
  /** Group id shared by this cluster's namespace names (twt-<owner>.<id>-...). */
  readonly id: string;
  readonly underlay: TestNetns;
  /** The underlay bridge inside `underlay` ("br0"). */
  readonly bridge: string;
  readonly hosts: readonly Host[];
  /** Pods currently alive (destroyed pods drop out). */
  readonly pods: readonly Pod<Host>[];
  readonly underlayCidr: string;
  readonly mtu: number;
  /** Adds a pod namespace to `host` (a Host or its index). */
  addPod(host: Host | number, opts?: PodOptions): Promise<Pod<Host>>;
  /** Names of every namespace of the cluster that still exists. */
  namespaces(): string[];
  /** Stops what the cluster registered (daemons spawned in its namespaces) and deletes all its namespaces. Idempotent. */
  destroy(): Promise<void>;
}

function ipv4ToInt(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The IPv6 test ranges: unique-local and documentation space only. */
const UNDERLAY_RANGES_V6 = ['fd00::/8', '2001:db8::/32'];

/** Checks the IPv6 underlay subnet and returns the addresses of `hosts` hosts in it. */
export function underlayAddressesV6(cidr: string, hosts: number): { prefix: number; ips: string[] } {
  const c = parseCidr(cidr, 'IPv6 underlay CIDR');
  if (c.address.family !== 6) throw new Error(`createCluster: IPv6 underlay ${cidr} must be IPv6`);
  if (!UNDERLAY_RANGES_V6.some((r) => prefixContains(parseCidr(r), c))) throw new Error(`createCluster: IPv6 underlay ${cidr} must lie inside ${UNDERLAY_RANGES_V6.join(' or ')}`);
  const base = bytesToBigInt(networkOf(c).bytes);
  return { prefix: c.prefixLength, ips: Array.from({ length: hosts }, (_, i) => bigIntToIpv6(base + BigInt(i + 1))) };
}

/** Checks the underlay subnet and returns the addresses of `hosts` hosts in it. */
export function underlayAddresses(cidr: string, hosts: number): { network: string; prefix: number; ips: string[] } {
  const c = parseCidr(cidr, 'underlay CIDR');
  if (c.address.family !== 4) throw new Error(`createCluster: underlay ${cidr} must be IPv4`);
  const range = parseCidr(UNDERLAY_RANGE);
  const net = (ipv4ToInt(c.address.bytes) & maskOf(c.prefixLength)) >>> 0;
  if (c.prefixLength < range.prefixLength || ((net & maskOf(range.prefixLength)) >>> 0) !== ipv4ToInt(range.address.bytes)) {
    throw new Error(`createCluster: underlay ${cidr} must lie inside ${UNDERLAY_RANGE} (test-machine network rules)`);
  }
  if (!Number.isInteger(hosts) || hosts < 1) throw new Error(`createCluster: hosts must be an integer >= 1, got ${hosts}`);
  const usable = 2 ** (32 - c.prefixLength) - 2;
  if (hosts > usable) throw new Error(`createCluster: ${hosts} hosts do not fit in ${cidr} (${Math.max(usable, 0)} usable addresses)`);
  const ips = Array.from({ length: hosts }, (_, i) => intToIpv4(net + i + 1));
  return { network: intToIpv4(net), prefix: c.prefixLength, ips };
}

/**
 * Builds the underlay (a namespace holding bridge br0), `hosts` host namespaces each joined to
 * it by a veth, with addresses, MTU, lo up and ip_forward. On any failure, whatever was built is
 * destroyed before the error is rethrown.
 */
export async function createCluster(opts: ClusterOptions): Promise<Cluster> {
  const underlayCidr = opts.underlayCidr ?? DEFAULT_UNDERLAY_CIDR;
  const { prefix, ips } = underlayAddresses(underlayCidr, opts.hosts);
  const v6 = opts.underlayCidrV6 === undefined ? undefined : underlayAddressesV6(opts.underlayCidrV6, opts.hosts);
  if (opts.underlayIpv4 === false && v6 === undefined) throw new Error('createCluster: underlayIpv4 false needs underlayCidrV6');
  const mtu = opts.mtu ?? 1500;
  const hostIfname = opts.hostIfname ?? 'eth0';
  const outer = opts.registry ?? cleanup;
  const id = groupId();
  // The cluster's own registry: namespaces, pods and daemons spawned in them unwind together.
  const own = new CleanupRegistry(`cluster ${id}`);
  const entry = outer.defer(`cluster ${id}`, () => own.runAll(), { timeoutMs: 60_000 });
  const hosts: Host[] = [];
  const pods: Pod<Host>[] = [];
  let podCounter = 0;

  try {
    const underlay = await createTestNetns('ul', { group: id, registry: own });
    await underlay.netlink(async (nl) => {
      await nl.createBridge({ name: UNDERLAY_BRIDGE, mtu });
      await nl.setUp(UNDERLAY_BRIDGE);
    });

    for (let i = 0; i < opts.hosts; i++) {
      const base = await createTestNetns(`h${i}`, { group: id, registry: own });
      hosts.push(new Host(base, {
        index: i,
        underlayIp: ips[i]!,
        underlayCidr: `${ips[i]!}/${prefix}`,
        underlayIfname: hostIfname,
        bridgePort: `ul-h${i}`,
        underlayIpv6: v6?.ips[i],
      }));
    }

    await Promise.all(hosts.map(async (host) => {
      await underlay.netlink(async (nl) => {
        await nl.createVeth({ name: host.bridgePort, peerName: hostIfname, peerNetnsPath: host.netnsPath, mtu });
        await nl.setMaster(host.bridgePort, UNDERLAY_BRIDGE);
        await nl.setUp(host.bridgePort);
      });
      if (v6) {
        // Before the address: without DAD it is usable at once, not "tentative" for a second.
        host.writeSysctl(`net.ipv6.conf.${hostIfname}.accept_dad`, 0);
        host.writeSysctl('net.ipv6.conf.all.forwarding', 1);
      }
      await host.netlink(async (nl) => {
        if (opts.underlayIpv4 !== false) await nl.addAddress(hostIfname, host.underlayCidr);
        if (v6) await nl.addAddress(hostIfname, `${host.underlayIpv6!}/${v6.prefix}`);
        await nl.setUp(hostIfname);
      });
      if (opts.ipForward ?? true) host.writeSysctl('net.ipv4.ip_forward', 1);
    }));

    let destroyed: Promise<void> | undefined;
    const cluster: Cluster = {
      id,
      underlay,
      bridge: UNDERLAY_BRIDGE,
      hosts,
      get pods() { return pods.filter((p) => p.exists); },
      underlayCidr,
      mtu,
      addPod: async (hostRef, podOpts = {}) => {
        if (destroyed) throw new Error(`cluster ${id} is destroyed`);
        const host = typeof hostRef === 'number' ? hosts[hostRef] : hostRef;
        if (!host || !hosts.includes(host)) throw new Error(`addPod: no such host ${typeof hostRef === 'number' ? hostRef : hostRef.name} in cluster ${id}`);
        const pod = await addPod(host, podOpts, { group: id, registry: own, label: podOpts.label ?? `h${host.index}p${podCounter++}`, mtu });
        pods.push(pod);
        return pod;
      },
      namespaces: () => [underlay, ...hosts, ...pods].filter((n) => n.exists).map((n) => n.name),
      destroy: () => (destroyed ??= entry.run()),
    };
    return cluster;
  } catch (err) {
    try {
      await entry.run();
    } catch (cleanupErr) {
      throw new AggregateError([err, cleanupErr], `createCluster failed: ${(err as Error).message} (and its cleanup failed too: ${(cleanupErr as Error).message})`);
    }
    throw err;
  }
}

/**
 * Creates a pod namespace joined to `host` by a veth (created in the host, its peer directly in
 * the pod namespace). Used by Cluster.addPod; usable on its own with any TestNetns as the host.
 */
export async function addPod<H extends TestNetns>(
  host: H,
  opts: PodOptions,
  ctx: { group?: string; registry?: CleanupRegistry; label: string; mtu?: number },
): Promise<Pod<H>> {
  const base = await createTestNetns(ctx.label, { group: ctx.group ?? groupId(), registry: ctx.registry ?? cleanup });
  const ifname = opts.ifname ?? 'eth0';
  const hostIfname = opts.hostIfname ?? ifName('p');
  const mtu = opts.mtu ?? ctx.mtu;
  const cidr = opts.ip !== undefined ? parseCidr(opts.ip, 'pod IP') : undefined;
  const pod = new Pod<H>(base, {
    host,
    ifname,
    hostIfname,
    ip: cidr?.address.text,
    cidr: opts.ip,
    gateway: opts.gateway,
    ipv6: opts.ipv6 === undefined ? undefined : parseCidr(opts.ipv6, 'pod IPv6').address.text,
  });
  // Deleting one end removes both, synchronously; the pod namespace itself is freed later by the kernel.
  pod.onDestroy(`delete ${hostIfname} in ${host.name}`, async () => {
    if (!host.exists) return;
    await host.netlink(async (nl) => {
      const link = await nl.getLink(hostIfname);
      if (link) await nl.deleteLink(link.index).catch((err: unknown) => {
        if (!isNetlinkError(err, 'ENODEV')) throw err;
      });
    });
  });
  try {
    await host.netlink(async (nl) => {
      await nl.createVeth({ name: hostIfname, peerName: ifname, peerNetnsPath: pod.netnsPath, mtu });
      if (opts.bridge !== undefined) await nl.setMaster(hostIfname, opts.bridge);
      await nl.setUp(hostIfname);
    });
    if (opts.ipv6 !== undefined) pod.writeSysctl(`net.ipv6.conf.${ifname}.accept_dad`, 0);
    await pod.netlink(async (nl) => {
      if (opts.ip !== undefined) await nl.addAddress(ifname, opts.ip);
      if (opts.ipv6 !== undefined) await nl.addAddress(ifname, opts.ipv6);
      await nl.setUp(ifname);
      const oif = (await nl.requireLink(ifname)).index;
      for (const gateway of [opts.gateway, opts.gatewayV6]) {
        if (gateway === undefined) continue;
        const dst = gateway.includes(':') ? '::/0' : '0.0.0.0/0';
        await nl.replaceRoute({ dst, gateway, oif, onlink: true, protocol: RTPROT_BOOT });
      }
    });
    if (opts.hostRoute) {
      if (!cidr) throw new Error('addPod: hostRoute needs the pod ip');
      await host.netlink(async (nl) => {
        const oif = (await nl.requireLink(hostIfname)).index;
        const dst = cidr.address.family === 4 ? `${cidr.address.text}/32` : `${cidr.address.text}/128`;
        await nl.replaceRoute({ dst, oif, scope: 'link', protocol: RTPROT_BOOT });
      });
    }
  } catch (err) {
    await pod.destroy();
    throw err;
  }
  return pod;
}
