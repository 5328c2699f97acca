import type { RouteSpec } from '../../netlink/index.js';
import { leaseFamily, type BackendContext, type HostBgpSettings, type LocalLease, type Network, type RemoteLease, type RoutingRoute, type RoutingStatus, type SyncReport } from '../backend.js';
import { ownedNetworks, screenRemoteLeases } from '../lease-checks.js';
import { connectedNetworks, onLinkMatcher } from '../on-link.js';
import { Reconciler } from '../reconciler.js';
import { applyRoutes, StaleRouteRemovalError } from '../route-apply.js';
import { applyRouteChanges } from '../route-changes.js';
import { splitRouteFailures } from '../route-sync.js';
import { BGP_PORT, RESTART_TIME_S, TYPE, type BgpOptions } from './config.js';
import { DEFAULT_MAX_PREFIXES_PER_PEER, type BgpDriver, type DriverOptions, type PathsEvent, type PeerStatus } from './driver.js';
import { bgpUnderlay, type BgpUnderlay } from './families.js';
import { importFilter, type ImportDecision } from './import-filter.js';
import { PathTable } from './path-table.js';
import { planBgpChanges, planBgpRoutes, type BgpPlanInput } from './plan.js';
import { kernelRoutesToKeep } from './preserved.js';
import { markRunning, restartedSinceBoot } from './restart-marker.js';
import { planSessions } from './sessions.js';

/** Starts the speaker the options name; injectable so unit tests run without sockets. */
export type DriverFactory = (options: BgpOptions, driverOptions: DriverOptions, host: HostBgpSettings | undefined) => Promise<BgpDriver>;

/**
 * How long a restarted agent keeps the routes it found while waiting for its peers' End-of-RIB
 * (RFC 4724 §4.1 defers route selection the same way); after it, routes no peer gave back go.
 */
export const CONVERGE_TIMEOUT_MS = 30_000;

/**
 * How long an update waits for more before it is written (each write is one netlink batch).
 * Updates that come while a write runs wait for no timer: one more write follows. After a quiet
 * spell an update is most likely alone (a host joined or left) and waits little; within a burst
 * (a table arriving in many UPDATEs: a write ended less than APPLY_BURST_WINDOW_MS ago) it waits
 * for the rest, up to APPLY_GATHER_BURST_MS, but no longer than the peer keeps sending: once no
 * update came for APPLY_GATHER_IDLE_MS the burst has ended (or paused) and is written, so the
 * last routes of a table do not sit out the whole wait. Measured through the racks of `bench
 * bgp-backend`: a flat 20 ms made joins 69 ms at p50; a flat 5 ms made them 55 ms but cost a
 * 10,000-route install 30 % more CPU (more, smaller writes).
 */
const APPLY_GATHER_QUIET_MS = 2;
const APPLY_GATHER_BURST_MS = 20;
const APPLY_GATHER_IDLE_MS = 2;
const APPLY_BURST_WINDOW_MS = 100;

/** Refusals logged per peer, prefix and reason before the log goes quiet (the counter keeps counting). */
const LOGGED_REFUSALS_MAX = 10_000;

/**
 * The bgp network on this host: no device and no encapsulation. The host's subnet is announced
 * with its PublicIP as next hop (its IPv6 subnet with its PublicIPv6, over MP-BGP: families.ts
 * says which sessions carry what); what the peers announce becomes plain routes on the external
 * interface, one ECMP route where several paths are equally good. The lease set in etcd stays
 * the source of truth for which subnets exist (import-filter.ts), so a router cannot steer pod
 * traffic to a prefix no host leased.
 */
export class BgpNetwork implements Network {
  readonly leaseData = null;
  readonly mtu: number;
  readonly #reconciler: Reconciler;
  readonly #table = new PathTable();
  readonly #rejected = new Map<string, { peer: string; reason: string; count: number }>();
  readonly #logged = new Set<string>();
  readonly #asn: number;
  readonly #routerId: string;
  #driver: BgpDriver | undefined;
  #lease: LocalLease | undefined;
  /** The current leases of this backend's hosts, screened once per lease set: they name the mesh peers and what may be installed. */
  #hosts: readonly { publicIp: string; dst: string; family: 4 | 6 }[] = [];
  #filter: ((prefix: string) => ImportDecision) | undefined;
  #preserved = new Map<string, RouteSpec>();
  #waitingForEor = new Set<string>();
  #convergeTimer: NodeJS.Timeout | undefined;
  /** Routes the kernel refused at the last sync, with its reason. */
  #writeFailed = new Map<string, string>();
  /** The external interface's connected networks as the last sync read them. */
  #onLink: (ip: string) => boolean = () => false;
  #connected = '';
  /** Prefixes whose paths changed since the last write: what the next write plans again. */
  #dirty = new Set<string>();
  /** The next write plans and syncs the whole table (start, converged, a nexthop to drop, a failure). */
  #fullWanted = true;
  /** Whether the last write was a full sync (for the debug log). */
  #lastWasFull = false;
  #applyRunning = false;
  #applyAgain = false;
  /** When the last write ended (performance.now()), to tell a burst from a quiet spell. */
  #lastApplyEnded = -Infinity;
  /** When the burst's first waiting update came, and its latest. */
  #gatherBegan = 0;
  #lastUpdateAt = 0;
  #marked = false;
  readonly #underlay: BgpUnderlay;
  /** The cluster networks whose routes this backend owns (IPv4, IPv6 or both). */
  readonly #owned: readonly string[];

  constructor(private readonly ctx: BackendContext, private readonly options: BgpOptions, private readonly startDriver: DriverFactory) {
    this.mtu = ctx.extIface.mtu; // no encapsulation
    this.#underlay = bgpUnderlay(ctx, options);
    this.#owned = ownedNetworks(ctx);
    this.#asn = ctx.bgp?.asn ?? options.asn;
    this.#routerId = this.#underlay.routerId;
    // The lease set is kept here as well (this.#hosts): learned paths, not leases, drive the plan.
    this.#reconciler = new Reconciler({ apply: () => this.apply() }, ctx.log, TYPE);
  }

  async start(lease: LocalLease): Promise<void> {
    if (this.#driver !== undefined && (this.#lease?.subnet !== lease.subnet || this.#lease?.ipv6Subnet !== lease.ipv6Subnet)) {
      // A new subnet (the old lease was lost): the sessions' import and export rules name the old
      // one, so the speaker starts over, and what it learned goes with it.
      this.ctx.log.warn({ from: [this.#lease?.subnet, this.#lease?.ipv6Subnet], to: [lease.subnet, lease.ipv6Subnet] }, 'the lease changed: restarting the bgp speaker for the new subnet');
      const old = this.#driver;
      this.#driver = undefined;
      old.removeAllListeners();
      await old.close({ graceful: false });
      for (const peer of [...this.#table.countByPeer().keys()]) this.#table.dropPeer(peer);
    }
    const announced = this.#underlay.announcements(lease);
    this.#lease = lease;
    if (this.#driver === undefined) {
      const { ctx } = this;
      const underlay = this.#underlay;
      this.#preserved = await kernelRoutesToKeep(ctx.netlink, this.#owned);
      const restarted = await restartedSinceBoot(ctx.stateDir);
      const listen = ctx.bgp?.listen ?? { address: underlay.self, port: BGP_PORT };
      this.#driver = await this.startDriver(this.options, {
        asn: this.#asn, routerId: this.#routerId, listen, localAddress: underlay.localAddress, localAddressV6: underlay.localAddressV6,
        holdTimeS: this.options.holdTimeS, restartTimeS: this.options.gracefulRestart ? RESTART_TIME_S : 0,
        families: underlay.families,
        clusterNetwork: ctx.clusterNetwork, ownSubnet: lease.subnet, clusterNetworkV6: ctx.clusterNetworkV6, ownSubnetV6: lease.ipv6Subnet,
        maxPrefixes: DEFAULT_MAX_PREFIXES_PER_PEER, restarted,
        reflector: this.options.routeReflectors.includes(underlay.self),
      }, ctx.bgp);
      this.wire(this.#driver);
      ctx.log.info({
        speaker: this.ctx.bgp?.speaker ?? this.options.speaker, asn: this.#asn, routerId: this.#routerId, listen, families: underlay.families,
        transport: `IPv${underlay.transport}`, restarted, keptRoutes: this.#preserved.size,
      }, 'bgp speaker started');
      if (this.#preserved.size > 0) this.#convergeTimer = setTimeout(() => this.converged('timeout'), CONVERGE_TIMEOUT_MS);
    }
    this.#filter = undefined;
    await this.#driver.announce(announced);
    await this.updatePeers();
  }

  async sync(desired: readonly RemoteLease[]): Promise<SyncReport> {
    if (!this.#marked) {
      this.#marked = true;
      const err = await markRunning(this.ctx.stateDir);
      if (err) this.ctx.log.warn({ err }, 'cannot record the boot id: after a restart peers will not be told our routes stayed in place');
    }
    this.#hosts = this.screen(desired);
    this.#filter = undefined;
    await this.updatePeers();
    return this.#reconciler.sync(desired);
  }

  run(signal: AbortSignal): Promise<void> {
    const { netlink, extIface, resyncIntervalMs } = this.ctx;
    return this.#reconciler.run(signal, { watchLinks: (o) => netlink.watchLinks(o), netlink, extIndex: extIface.index, intervalMs: resyncIntervalMs })
      .finally(async () => {
        clearTimeout(this.#convergeTimer);
        // SIGTERM is a planned restart: no Cease, so the peers keep our route (RFC 4724 §4).
        await this.#driver?.close({ graceful: true });
      });
  }

  routing(): RoutingStatus {
    const routes = this.routeStatus();
    const received = this.#table.countByPeer();
    const accepted = new Map<string, number>();
    for (const r of routes) if (r.installed) for (const p of r.peers) accepted.set(p, (accepted.get(p) ?? 0) + 1);
    const now = Date.now();
    return {
      speaker: this.ctx.bgp?.speaker ?? this.options.speaker,
      asn: this.#asn,
      routerId: this.#routerId,
      peers: (this.#driver?.peers() ?? []).sort((a, b) => (a.address < b.address ? -1 : 1)).map((p) => ({
        address: p.address, asn: p.asn, role: p.role, state: p.state,
        uptimeS: p.upSince === undefined ? undefined : Math.max(0, Math.round((now - p.upSince) / 1000)),
        received: Math.max(p.received, received.get(p.address) ?? 0), accepted: accepted.get(p.address) ?? 0, sent: p.sent, lastError: p.lastError,
      })),
      routes,
      rejected: [...this.#rejected.values()].map((r) => ({ ...r })),
    };
  }

  /**
   * The leases of this backend's hosts, screened as every backend screens them: both families'
   * entries (a dual-stack host's lease is two), each one's subnet and underlay address.
   */
  private screen(leases: readonly RemoteLease[]): { publicIp: string; dst: string; family: 4 | 6 }[] {
    const { ctx } = this;
    const { usable } = screenRemoteLeases(leases, {
      type: TYPE, clusterNetwork: ctx.clusterNetwork, localPublicIp: ctx.extIface.publicIp,
      clusterNetworkV6: ctx.clusterNetworkV6, localPublicIpv6: ctx.extIface.publicIpv6,
    });
    return usable.map((u) => ({ publicIp: u.checked.publicIp, dst: u.checked.dst, family: leaseFamily(u.lease) }));
  }

  private filter(): (prefix: string) => ImportDecision {
    const { ctx } = this;
    this.#filter ??= importFilter({
      clusterNetwork: ctx.clusterNetwork, ownSubnet: this.#lease?.subnet,
      clusterNetworkV6: ctx.clusterNetworkV6, ownSubnetV6: this.#lease?.ipv6Subnet,
      leasedSubnets: this.#hosts.map((s) => s.dst),
    });
    return this.#filter;
  }

  private async updatePeers(): Promise<void> {
    if (!this.#driver) return;
    const underlay = this.#underlay;
    // One session per host, over the transport's family: its PublicIP (dual-stack), or its
    // PublicIPv6 in an IPv6-only cluster. The session carries both families' routes.
    const sessions = planSessions({
      options: this.options, self: underlay.self, asn: this.#asn,
      hosts: this.#hosts.filter((s) => s.family === underlay.transport).map((s) => s.publicIp),
      hostPeers: underlay.reachablePeers(this.ctx.bgp?.peers ?? []),
    });
    await this.#driver.setPeers(sessions);
    if (this.#convergeTimer !== undefined && this.#waitingForEor.size === 0) this.#waitingForEor = new Set(sessions.map((s) => s.address));
  }

  private wire(driver: BgpDriver): void {
    const { log } = this.ctx;
    driver.on('paths', (ev) => this.paths(ev));
    driver.on('peer', (p: PeerStatus) => log.info({ peer: p.address, asn: p.asn, role: p.role, state: p.state, lastError: p.lastError }, 'bgp session state'));
    driver.on('end-of-rib', ({ peer }) => {
      this.#waitingForEor.delete(peer);
      if (this.#convergeTimer !== undefined && this.#waitingForEor.size === 0) this.converged('end-of-rib from every peer');
    });
    driver.on('max-prefix', ({ peer, limit }) => {
      this.count(peer, 'max_prefix');
      log.error({ peer, limit }, `bgp peer ${peer} sent more than ${limit} prefixes: session reset (RFC 4486 Cease/1); fix the peer's export policy`);
    });
    driver.on('warning', (err) => log.warn({ err }, 'bgp speaker warning'));
  }

  private paths(ev: PathsEvent): void {
    this.#table.apply(ev, this.#dirty);
    const filter = this.filter();
    for (const r of ev.rejected ?? []) this.refused(ev.peer, r.prefix, r.reason, 'refused by the speaker');
    for (const p of ev.announced) {
      const d = filter(p.prefix);
      if (!d.ok) this.refused(ev.peer, p.prefix, d.reason, d.detail);
    }
    this.scheduleApply();
  }

  private refused(peer: string, prefix: string, reason: string, detail: string): void {
    this.count(peer, reason);
    const key = `${peer}|${prefix}|${reason}`;
    if (this.#logged.has(key) || this.#logged.size >= LOGGED_REFUSALS_MAX) return;
    this.#logged.add(key);
    this.ctx.log.warn({ peer, prefix, reason, detail }, 'bgp route refused: not installed');
  }

  private count(peer: string, reason: string): void {
    const key = `${peer}|${reason}`;
    const entry = this.#rejected.get(key);
    if (entry) entry.count += 1;
    else this.#rejected.set(key, { peer, reason, count: 1 });
  }

  private converged(why: string): void {
    clearTimeout(this.#convergeTimer);
    this.#convergeTimer = undefined;
    if (this.#preserved.size === 0) return;
    this.ctx.log.info({ why, kept: this.#preserved.size }, 'bgp routes re-learned after the restart; kept routes no peer sent again go now');
    this.#preserved = new Map();
    this.#fullWanted = true;
    this.scheduleApply();
  }

  /**
   * One kernel write for a burst of updates (a table of 10,000 prefixes arrives in many UPDATEs):
   * updates that come while a write runs are taken by one more write after it, never one each.
   */
  private scheduleApply(): void {
    if (!this.#reconciler.hasDesiredSet) return;
    const now = performance.now();
    this.#lastUpdateAt = now;
    if (this.#applyRunning) {
      this.#applyAgain = true;
      return;
    }
    this.#applyRunning = true;
    this.#gatherBegan = now;
    if (now - this.#lastApplyEnded < APPLY_BURST_WINDOW_MS) this.gatherBurst();
    else setTimeout(() => void this.applyLoop(), APPLY_GATHER_QUIET_MS);
  }

  /** Within a burst: writes once no update came for APPLY_GATHER_IDLE_MS, or APPLY_GATHER_BURST_MS after its first. */
  private gatherBurst(): void {
    const now = performance.now();
    const wait = Math.min(this.#lastUpdateAt + APPLY_GATHER_IDLE_MS, this.#gatherBegan + APPLY_GATHER_BURST_MS) - now;
    if (wait <= 0) void this.applyLoop();
    else setTimeout(() => this.gatherBurst(), wait);
  }

  private async applyLoop(): Promise<void> {
    try {
      do {
        this.#applyAgain = false;
        try {
          const began = performance.now();
          const report = await this.#reconciler.serial(() => this.applyChanged());
          if (report.changes > 0) this.ctx.log.debug({ changes: report.changes, prefixes: this.#table.size, ms: Math.round(performance.now() - began), full: this.#lastWasFull }, 'bgp routes installed');
        } catch (err) {
          this.ctx.log.error({ err }, 'installing bgp routes failed; the next resync retries');
        }
      } while (this.#applyAgain);
    } finally {
      this.#applyRunning = false;
      this.#lastApplyEnded = performance.now();
    }
  }

  /**
   * The routes of the prefixes whose paths changed since the last write, written on their own
   * (route-changes.ts) against what the last sync wrote: a burst costs what it changes. The whole
   * table is planned and synced instead when the record cannot be trusted (no sync yet, kernel
   * notifications lost), when the connected networks changed (every next hop's usability may
   * have), or when a route needs a nexthop or leaves one unused.
   */
  private async applyChanged(): Promise<SyncReport> {
    const { netlink, extIface } = this.ctx;
    const reconciler = this.#reconciler;
    const full = (connected?: string[]): Promise<SyncReport> => reconciler.asFullApply(() => this.apply(connected));
    if (this.#fullWanted || !reconciler.writtenTrusted) return full();
    const connected = await connectedNetworks(netlink, extIface.index);
    if (connected.join(' ') !== this.#connected) return full(connected);
    const dirty = this.#dirty;
    this.#dirty = new Set();
    this.#lastWasFull = false;
    const result = await applyRouteChanges(netlink, reconciler.written, planBgpChanges(this.planInput(), dirty));
    // Nothing written: the full sync plans every prefix, these too.
    if (result === undefined) return full(connected);
    const { writeFailed, removeFailed } = splitRouteFailures(result);
    for (const prefix of dirty) this.#writeFailed.delete(prefix);
    for (const s of [...writeFailed, ...result.refused]) this.#writeFailed.set(s.subnet, s.reason);
    const changes = result.replaced + result.deleted;
    if (result.nexthopsUnused || result.failed.length > 0 || result.refused.length > 0) {
      // The full sync deletes what no route names any more, retries, and reports refusals with their reason.
      this.#fullWanted = true;
      this.#applyAgain = true;
    }
    if (removeFailed.length > 0) throw new StaleRouteRemovalError(TYPE, removeFailed, changes);
    return { changes, skipped: [] };
  }

  private async apply(connectedNow?: string[]): Promise<SyncReport> {
    const { netlink, extIface } = this.ctx;
    // Read each time: the interface's addresses (so its connected networks) can change.
    const connected = connectedNow ?? await connectedNetworks(netlink, extIface.index);
    this.#onLink = onLinkMatcher(connected);
    this.#connected = connected.join(' ');
    this.#fullWanted = false;
    this.#lastWasFull = true;
    this.#dirty = new Set();
    const plan = planBgpRoutes(this.planInput(), false);
    try {
      // Both families' routes in one sync: a sync of one family alone would drop the other's.
      const report = await applyRoutes(netlink, TYPE, this.#owned, { routes: plan.routes, skipped: [] }, 0, this.#reconciler.written);
      this.#writeFailed = new Map(report.skipped.map((s) => [s.subnet, s.reason]));
      return report;
    } catch (err) {
      this.#fullWanted = true;
      throw err;
    }
  }

  private planInput(): BgpPlanInput {
    const { extIface } = this.ctx;
    return {
      table: this.#table, filter: this.filter(), onLink: this.#onLink, extIndex: extIface.index,
      ownAddresses: this.#underlay.ownAddresses, preserved: this.#preserved,
    };
  }

  /**
   * Every learned prefix, installed or why not, planned again when asked (twillctl, /metrics)
   * rather than at every sync, against the connected networks the last sync read.
   */
  private routeStatus(): RoutingRoute[] {
    const failed = this.#writeFailed;
    return planBgpRoutes(this.planInput()).status.map((r) => (failed.has(r.prefix) ? { ...r, installed: false, reason: failed.get(r.prefix) } : r));
  }
}
