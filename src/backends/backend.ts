import type { Logger } from 'pino';
import type { NetlinkHandle } from '../netlink/index.js';

/**
 * The seam between the agent and a backend (after flannel pkg/backend/common.go, made
 * declarative). The agent:
 *   1. parses the backend's options from the network config (parseOptions, at config time);
 *   2. registers the network (register): the backend prepares what it needs before the lease
 *      exists (a VXLAN device and its MAC, say) and says what to publish in the lease and the MTU;
 *   3. acquires the lease with that data, then calls start(lease);
 *   4. calls sync(desired) with the full set of remote leases whenever it changes, and run(signal)
 *      once for the backend's own loops (periodic resync, link events) until shutdown.
 * A backend never talks to the store and never imports another backend.
 */

/** The interface the node's traffic leaves by, and the address other hosts reach it at. */
export interface ExternalInterface {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  /**
   * The interface's own IPv4 address. Undefined only on a host without IPv4 there, which the
   * agent accepts for an IPv6-only network alone (config-check.ts); backends that need IPv4 use
   * ipv4Underlay().
   */
  readonly address: string | undefined;
  /** The address published in the lease (--public-ip, else `address`). */
  readonly publicIp: string | undefined;
  /** The interface's first global IPv6 address, if it has one. */
  readonly ipv6Address?: string | undefined;
  /** The IPv6 address published in a dual-stack lease (--public-ipv6, else `ipv6Address`). */
  readonly publicIpv6?: string | undefined;
}

/** Everything a backend may use; nothing global. */
export interface BackendContext {
  readonly log: Logger;
  /** Netlink handle in the agent's (the host's) network namespace. */
  readonly netlink: NetlinkHandle;
  readonly extIface: ExternalInterface;
  /** The cluster's IPv4 network, e.g. "10.244.0.0/16"; undefined in an IPv6-only cluster. */
  readonly clusterNetwork: string | undefined;
  /**
   * The cluster's IPv6 network (IPv6Network, e.g. "fc00::/48") when the config enables IPv6; only
   * a backend with supportsIpv6 is ever given one.
   */
  readonly clusterNetworkV6?: string | undefined;
  /** Where a backend may keep state across restarts (e.g. a VTEP MAC). */
  readonly stateDir: string;
  /** How often run() compares the kernel with the desired state and repairs drift (default 10 s). */
  readonly resyncIntervalMs: number;
  /** This host's own BGP settings (twilld's --bgp-* flags); only the bgp backend reads them. */
  readonly bgp?: HostBgpSettings | undefined;
}

/**
 * Per-host BGP settings: every rack has its own top-of-rack router, so they cannot live in the
 * cluster-wide network config. Parsed and checked by the bgp backend's parsers at flag time.
 */
export interface HostBgpSettings {
  /** --bgp-asn: this host's AS (eBGP to its ToR); default the network config's ASN. */
  readonly asn: number | undefined;
  /** --bgp-router-id; default the public IP. */
  readonly routerId: string | undefined;
  /** --bgp-peer, added to the network config's Peers. */
  readonly peers: readonly HostBgpPeer[];
  /** --bgp-listen; default the public IP, port 179. */
  readonly listen: { readonly address: string; readonly port: number } | undefined;
  /** --bgp-speaker: this host's speaker, "builtin" or "gobgp"; default the network config's Speaker. */
  readonly speaker: 'builtin' | 'gobgp' | undefined;
  /** --gobgp-api: the gobgpd beside the agent, for Speaker "gobgp". */
  readonly gobgpApi: string | undefined;
}

/** An external BGP peer (a ToR, a route server). */
export interface HostBgpPeer {
  readonly address: string;
  readonly asn: number;
  /** TCP MD5 signature key (RFC 2385). */
  readonly password: string | undefined;
  readonly port: number;
  /** eBGP multihop: the TTL of the session's packets; undefined is a directly connected peer. */
  readonly multihop: number | undefined;
}

/**
 * This host's lease, as the backend needs it: the IPv4 part (absent in an IPv6-only cluster) and
 * the IPv6 part (present when the config enables IPv6).
 */
export interface LocalLease {
  /** "10.244.3.0/24"; undefined in an IPv6-only cluster. */
  readonly subnet: string | undefined;
  readonly publicIp: string | undefined;
  /** "fc00:0:0:3::/64" in a dual-stack or IPv6-only cluster. */
  readonly ipv6Subnet?: string | undefined;
  readonly publicIpv6?: string | undefined;
}

/**
 * One address family of another host's lease, for this backend's type. A dual-stack lease
 * reaches the backend as two entries: its IPv4 subnet via its PublicIP with its BackendData, and
 * its IPv6 subnet via its PublicIPv6 with its BackendV6Data (flannel keeps the two apart the same
 * way). Only a backend with supportsIpv6 is ever given IPv6 entries; leaseFamily() tells them apart.
 */
export interface RemoteLease {
  /** "10.244.3.0/24" or "fc00:0:0:3::/64". */
  readonly subnet: string;
  /** The host's underlay address of the subnet's family (PublicIP or PublicIPv6). */
  readonly publicIp: string;
  readonly backendType: string;
  /** Opaque: only the backend of that type decodes it (BackendData, or BackendV6Data for IPv6). */
  readonly backendData: unknown;
}

/** The address family of a remote lease entry. */
export function leaseFamily(lease: Pick<RemoteLease, 'subnet'>): 4 | 6 {
  return lease.subnet.includes(':') ? 6 : 4;
}

/** The IPv4 part of this host's lease, or a clear error for a backend that needs it (one without IPv6-only support). */
export function ipv4Lease(lease: LocalLease, backend: string): { readonly subnet: string; readonly publicIp: string } {
  if (lease.subnet === undefined || lease.publicIp === undefined) throw new Error(`the ${backend} backend needs an IPv4 subnet, and this host's lease has none`);
  return { subnet: lease.subnet, publicIp: lease.publicIp };
}

/** The external interface's IPv4 address and PublicIP, or a clear error for a backend that needs them. */
export function ipv4Underlay(ext: ExternalInterface, backend: string): { readonly address: string; readonly publicIp: string } {
  if (ext.address === undefined || ext.publicIp === undefined) throw new Error(`the ${backend} backend needs an IPv4 address on ${ext.name}, and it has none`);
  return { address: ext.address, publicIp: ext.publicIp };
}

/** The IPv4 cluster network, or a clear error for a backend that cannot run without one. */
export function ipv4ClusterNetwork(ctx: BackendContext, backend: string): string {
  if (ctx.clusterNetwork === undefined) throw new Error(`the ${backend} backend needs an IPv4 cluster network (EnableIPv4)`);
  return ctx.clusterNetwork;
}

/** A lease a backend did not program, and why. */
export interface SkippedLease {
  readonly subnet: string;
  readonly reason: string;
  /**
   * 'foreign_route': a route of another owner holds the destination and Twill does not replace
   * it (route-sync.ts); 'write_failed': the kernel refused an entry the lease needs; absent for
   * a lease the backend cannot use (unusable lease data, an off-link host...).
   */
  readonly code?: 'foreign_route' | 'write_failed' | undefined;
}

/**
 * What a failed entry means, the same for every backend: when the kernel refuses an entry that a
 * lease needs, sync reports that lease as skipped (code 'write_failed', with the kernel's reason)
 * and applies everything else: one lease must not take routing down for the others. The agent
 * logs and counts it, and the backend's next sync or resync tries it again (the desired set is
 * kept before it is applied). When removing a stale entry fails, sync throws after applying the
 * rest: the kernel holds something it should not, so the agent retries with backoff and reports
 * backend_sync_failing after 3 failures in a row.
 */
export interface SyncReport {
  /** Kernel objects written or removed by this sync. */
  readonly changes: number;
  /** Leases skipped, each with the reason (a malformed BackendData, an off-link host...). */
  readonly skipped: readonly SkippedLease[];
}

export interface Network {
  /** BackendData to publish in this host's lease (flannel's JSON shape for the type). */
  readonly leaseData: unknown;
  /** BackendV6Data for a dual-stack lease (flannel's vxlan: its IPv6 device's VTEP MAC); a backend that routes IPv6 sets it. */
  readonly leaseDataV6?: unknown;
  /** MTU for pods (subnet.env FLANNEL_MTU). */
  readonly mtu: number;
  start(lease: LocalLease): Promise<void>;
  /** Declarative and idempotent: afterwards the kernel holds exactly what `desired` implies. */
  sync(desired: readonly RemoteLease[]): Promise<SyncReport>;
  /** Resolves when `signal` aborts; keeps kernel state in place (a restart must not cut traffic). */
  run(signal: AbortSignal): Promise<void>;
  /** A routing-protocol backend's sessions and learned routes (bgp), for twillctl and /metrics. */
  routing?(): RoutingStatus;
}

/** What `twillctl bgp peers|routes` shows and /metrics exports for a routing-protocol backend. */
export interface RoutingStatus {
  readonly speaker: string;
  readonly asn: number;
  readonly routerId: string;
  readonly peers: readonly RoutingPeer[];
  readonly routes: readonly RoutingRoute[];
  /** Learned prefixes refused so far, per peer and reason (monotonic counters). */
  readonly rejected: readonly { readonly peer: string; readonly reason: string; readonly count: number }[];
}

export interface RoutingPeer {
  readonly address: string;
  readonly asn: number;
  /** mesh, reflector, reflector-client or external. */
  readonly role: string;
  readonly state: string;
  /** Seconds since the session came up, if it is up. */
  readonly uptimeS: number | undefined;
  readonly received: number;
  /** Received prefixes that may be installed (passed the import rules). */
  readonly accepted: number;
  readonly sent: number;
  readonly lastError: string | undefined;
}

export interface RoutingRoute {
  readonly prefix: string;
  /** The next hops of the best (equal-cost) paths. */
  readonly nextHops: readonly string[];
  /** The peers those paths came from. */
  readonly peers: readonly string[];
  readonly installed: boolean;
  /** Why it is not installed (a refused prefix, a next hop off-link, a kernel refusal). */
  readonly reason: string | undefined;
}

export interface Backend<Options = unknown> {
  readonly type: string;
  /**
   * Whether this backend carries pod traffic of the IPv6 subnets of a dual-stack or IPv6-only
   * config. Absent is false: the agent then refuses a config with EnableIPv6 (ipv6Refusal) rather
   * than hand out IPv6 subnets nothing routes.
   */
  readonly supportsIpv6?: boolean | undefined;
  /** Why a backend without supportsIpv6 cannot carry IPv6 pods, for the agent's refusal. */
  readonly ipv6Unsupported?: string | undefined;
  /**
   * Validates this backend's options from the network config's Backend object (without "Type")
   * into a frozen value. Throws InvalidArgumentError naming the option, prefixed with the type.
   */
  parseOptions(raw: Readonly<Record<string, unknown>>): Options;
  register(ctx: BackendContext, options: Options): Promise<Network>;
}

/** Why `backend` cannot serve a config with EnableIPv6 true, or undefined when it can. */
export function ipv6Refusal(backend: Backend): string | undefined {
  if (backend.supportsIpv6 === true) return undefined;
  return `EnableIPv6: the ${backend.type} backend ${backend.ipv6Unsupported ?? 'does not route IPv6 yet'}`;
}

/** Resolves when the signal aborts (immediately if it already has). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
