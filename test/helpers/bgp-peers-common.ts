/**
 * Shared parts of the BGP peer harness (bgp-peers.ts): the public types, option defaults, and the
 * address, prefix and community helpers the three kinds (bgp-peers-gobgp.ts, -bird.ts, -frr.ts)
 * use. The base class they extend is in bgp-peers-base.ts. Kept apart from bgp-peers.ts so the
 * kind modules import no cycle.
 */
import type { CleanupRegistry } from './cleanup.js';
import type { TestNetns } from './netns.js';
import { waitFor } from './wait.js';

export type PeerKind = 'gobgp' | 'bird' | 'frr';
export type PeerFamily = 'ipv4-unicast' | 'ipv6-unicast';

export interface PeerNeighbor {
  readonly address: string;
  readonly asn: number;
  /** Wait for the neighbor to connect; never connect out. */
  readonly passive?: boolean | undefined;
  /** TCP MD5 (RFC 2385) key. */
  readonly md5?: string | undefined;
  /** The neighbor's port (default 179). */
  readonly port?: number | undefined;
  /** Default: the family of `address`. */
  readonly families?: readonly PeerFamily[] | undefined;
  /** eBGP multihop TTL (eBGP sessions are direct, TTL 1, without it). */
  readonly multihop?: number | undefined;
  /** Hold time in seconds; keepalive is a third of it. Default 9. */
  readonly holdTime?: number | undefined;
  /**
   * Graceful restart (RFC 4724) on this session. Default off, and off means off on both roles:
   * BIRD ("aware") and FRR ("helper") would otherwise keep a killed peer's routes for 120 s.
   */
  readonly gracefulRestart?: boolean | undefined;
  /** An iBGP route-reflector client of this daemon (RFC 4456): a ToR in its rack's AS. */
  readonly routeReflectorClient?: boolean | undefined;
  /** Send this neighbor our own address as next hop for routes learned over eBGP (a ToR towards its rack). */
  readonly nextHopSelf?: boolean | undefined;
}

export interface PeerDaemonOptions {
  readonly kind: PeerKind;
  /** Where the daemon runs (never the root namespace). */
  readonly netns: TestNetns;
  readonly asn: number;
  readonly routerId: string;
  /** Address(es) to bind, at most one per family; also the session source. Default: all addresses. */
  readonly listenAddress?: string | readonly string[] | undefined;
  /** Port to listen on (default 179). */
  readonly port?: number | undefined;
  readonly neighbors: readonly PeerNeighbor[];
  /** Originated from the start (and again after restart()). */
  readonly announce?: readonly ({ prefix: string } & AnnounceOptions)[] | undefined;
  /** Import everything the neighbors send (default true); false: import nothing (sessions still come up). */
  readonly acceptAll?: boolean | undefined;
  /** Per neighbor and family: the session is shut down when a neighbor sends more. */
  readonly maxPrefix?: number | undefined;
  /**
   * Also re-advertise learned routes (a transit router). Default false: the daemon exports only
   * what it originates (announce/announceMany), so every learned route comes from its originator.
   */
  readonly exportLearned?: boolean | undefined;
  /**
   * Install the best routes in the namespace's kernel and forward by them (a real router: a ToR).
   * Default false: a RIB-only speaker. BIRD: a kernel protocol exporting BGP routes; FRR: zebra does.
   */
  readonly installRoutes?: boolean | undefined;
  /** In names and messages ([a-z0-9_.-]); default the kind. */
  readonly label?: string | undefined;
  /** Registry that stops the daemon and removes its dir; default the namespace's. */
  readonly registry?: CleanupRegistry | undefined;
  /** Copy the daemon's log to stderr (debugging). */
  readonly echo?: boolean | undefined;
}

export interface AnnounceOptions {
  /** Ask for this next hop (honoured on iBGP; eBGP peers usually rewrite it to the session address). */
  readonly nextHop?: string | undefined;
  /** "65000:1" */
  readonly communities?: readonly string[] | undefined;
  /** "4200000001:1:2" */
  readonly largeCommunities?: readonly string[] | undefined;
  readonly med?: number | undefined;
}

/** A route the daemon learned over BGP, in one shape for all three kinds. */
export interface LearnedRoute {
  /** Canonical: "10.1.0.0/24", "fd00:10::/64". */
  readonly prefix: string;
  /** The BGP next hop (for IPv6 the global one when a link-local one comes too). */
  readonly nextHop: string;
  /** AS_SEQUENCE numbers in order, AS_SET members flattened in. */
  readonly asPath: number[];
  readonly communities?: string[];
  readonly largeCommunities?: string[];
  readonly med?: number;
  /** As the daemon stores it: BIRD gives every imported route one (100), gobgp and FRR only iBGP routes. */
  readonly localPref?: number;
  /** Neighbor address it came from, when the daemon says. */
  readonly from?: string;
  /**
   * True while the daemon keeps it as stale for a sender whose session ended and that is
   * restarting gracefully (RFC 4724 §4.2). FRR and gobgp flag each such path; BIRD shows no
   * per-route flag (see NeighborStatus.gracefulRestart), so its routes never carry this.
   */
  readonly stale?: true;
}

/** BGP messages of one kind counted by a daemon on one session. */
export interface MessageCounts {
  readonly updates: number;
  readonly routeRefresh: number;
  readonly notifications: number;
}

/**
 * What a daemon tells about one neighbor beyond its state, in one shape; a field the daemon does
 * not report is absent (never a guess).
 */
export interface NeighborStatus {
  /** As sessionState(). */
  readonly state: string;
  /** When the current session came up, in the daemon's own form (BIRD, gobgp): compare two reads to see whether it went down in between. */
  readonly upSince?: string;
  /** Families whose End-of-RIB the daemon recorded from the neighbor (FRR, gobgp; BIRD shows nothing of it). */
  readonly endOfRibReceived?: readonly PeerFamily[];
  /** BGP messages counted on the session (FRR; gobgp has no route-refresh counter for sent ones). */
  readonly messages?: { readonly received: MessageCounts; readonly sent: MessageCounts };
  /** Route announcements received, repeats included (BIRD: the "Import updates" received column of the neighbor's channels). */
  readonly routeUpdatesReceived?: number;
  /** How often the session reached Established and dropped since the daemon started (FRR). */
  readonly connections?: { readonly established: number; readonly dropped: number };
  /** Graceful restart (RFC 4724) with this neighbor (BIRD, FRR). */
  readonly gracefulRestart?: {
    /** Its session ended and the daemon keeps its routes as stale, waiting for it to come back (§4.2). */
    readonly helping: boolean;
    /** The Restart State bit of the neighbor's OPEN on the current session (false while there is none). */
    readonly peerRestarting: boolean;
    /** The families whose Forwarding State bit it set in that OPEN. */
    readonly peerForwarding: readonly PeerFamily[];
  };
}

export interface PeerDaemon {
  readonly kind: PeerKind;
  readonly label: string;
  /** Pid of the BGP process (bgpd for FRR); changes on restart(). */
  readonly pid: number;
  readonly running: boolean;
  readonly netns: TestNetns;
  /** The daemon's private dir (config, control socket, pid files). */
  readonly dir: string;
  /** 'established', or the daemon's own state word lowercased ('active', 'connect', 'idle', 'opensent', 'down' …). */
  sessionState(neighbor: string): Promise<string>;
  waitEstablished(neighbor: string, timeoutMs?: number): Promise<void>;
  /** Waits until the session is anything but established. */
  waitNotEstablished(neighbor: string, timeoutMs?: number): Promise<void>;
  /** Counters and flags the daemon keeps for the neighbor (see NeighborStatus for who reports what). */
  neighborStatus(neighbor: string): Promise<NeighborStatus>;
  /**
   * Asks the neighbor for its routes again without resetting the session: FRR (`clear bgp <a> soft
   * in`) and BIRD (`reload in`) keep no copy of what they received, so they send a ROUTE-REFRESH
   * (RFC 2918). gobgpd keeps one and re-filters it without asking, so it throws.
   */
  requestRouteRefresh(neighbor: string): Promise<void>;
  /** Routes learned from BGP (not its own), normalised; default family ipv4-unicast. */
  learned(family?: PeerFamily): Promise<LearnedRoute[]>;
  /** How many routes of the family it learned from BGP (cheap: for big tables). */
  learnedCount(family?: PeerFamily): Promise<number>;
  announce(prefix: string, opts?: AnnounceOptions): Promise<void>;
  withdraw(prefix: string): Promise<void>;
  /**
   * Originates `count` IPv4 prefixes from `base` ("100.64.0.0/32" by default; "100.64.0.0/24"
   * steps by /24), fast. Resolves once the daemon holds them itself, not once peers have them.
   */
  announceMany(count: number, base?: string): Promise<void>;
  /** Graceful stop (SIGTERM, SIGKILL after 5 s). Idempotent; restart() starts it again. The registry stops it in any case. */
  stop(): Promise<void>;
  /** SIGKILL. The kernel closes its sockets, so peers see the session drop at once (see pause()). */
  kill(): Promise<void>;
  /** SIGSTOP: sockets stay open and silent, so peers drop the session only when the hold timer expires. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Stops (if running) and starts again with the same config and announcements. */
  restart(): Promise<void>;
  /** The output tail of the current and earlier processes of this daemon, for failure messages. */
  output(): string;
}

// ---- defaults ---------------------------------------------------------------------------------

export const DEFAULT_HOLD_TIME = 9;
/** Seconds between connection attempts, where the daemon lets us choose. */
export const CONNECT_RETRY = 2;
/** announceMany()'s default base: /32s from the shared address space. */
export const DEFAULT_BULK_BASE = '100.64.0.0/32';

export interface Announcement extends AnnounceOptions {
  readonly prefix: string;
}

/** One announceMany() call. */
export interface BulkSet {
  readonly id: number;
  readonly count: number;
  readonly base: number;
  readonly len: number;
}

export function keepaliveOf(holdTime: number): number {
  return Math.max(1, Math.floor(holdTime / 3));
}

// ---- addresses and prefixes -------------------------------------------------------------------

export function isIpv6(address: string): boolean {
  return address.includes(':');
}

export function familyOfAddress(address: string): PeerFamily {
  return isIpv6(address) ? 'ipv6-unicast' : 'ipv4-unicast';
}

export function familiesOf(n: PeerNeighbor): readonly PeerFamily[] {
  return n.families && n.families.length > 0 ? n.families : [familyOfAddress(n.address)];
}

/** RFC 5952 form for IPv6 ("fd00:0:0::02" → "fd00::2"); IPv4 unchanged. */
export function canonicalIp(address: string): string {
  if (!isIpv6(address)) return address;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
}

/** "fd00:0::/64" → "fd00::/64"; a bare address gets /32 or /128. */
export function canonicalPrefix(prefix: string): string {
  const [addr, len] = prefix.split('/');
  return `${canonicalIp(addr!)}/${len ?? (isIpv6(addr!) ? '128' : '32')}`;
}

export function familyOfPrefix(prefix: string): PeerFamily {
  return familyOfAddress(prefix.split('/')[0]!);
}

export function ipv4ToInt(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${JSON.stringify(address)}`);
  }
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function intToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Parses announceMany's base ("100.64.0.0", "100.64.0.0/24") and checks the range fits in IPv4. */
export function parseBulkBase(count: number, base: string, id: number): BulkSet {
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`announceMany: bad count ${count}`);
  const [addr, lenText] = base.split('/');
  const len = lenText === undefined ? 32 : Number(lenText);
  if (!Number.isInteger(len) || len < 8 || len > 32) throw new Error(`announceMany: base ${base}: prefix length must be 8..32`);
  const start = ipv4ToInt(addr!);
  const step = 2 ** (32 - len);
  if (start % step !== 0) throw new Error(`announceMany: base ${base} is not aligned to /${len}`);
  if (start + count * step > 2 ** 32) throw new Error(`announceMany: ${count} /${len}s from ${base} run past 255.255.255.255`);
  return { id, count, base: start, len };
}

/** The i-th prefix of a bulk set as a string. */
export function bulkPrefix(set: BulkSet, i: number): string {
  return `${intToIpv4(set.base + i * 2 ** (32 - set.len))}/${set.len}`;
}

/** "65000:1" checked; throws on anything else. */
export function checkCommunity(c: string): [number, number] {
  const m = /^(\d+):(\d+)$/.exec(c);
  if (!m || Number(m[1]) > 65535 || Number(m[2]) > 65535) throw new Error(`bad community ${JSON.stringify(c)} (want "asn:value", 16 bits each)`);
  return [Number(m[1]), Number(m[2])];
}

export function checkLargeCommunity(c: string): [number, number, number] {
  const m = /^(\d+):(\d+):(\d+)$/.exec(c);
  if (!m || [m[1], m[2], m[3]].some((x) => Number(x) > 0xffffffff)) throw new Error(`bad large community ${JSON.stringify(c)} (want "a:b:c", 32 bits each)`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Only keys with a value: learned() leaves absent attributes out rather than undefined. */
export function route(r: {
  prefix: string; nextHop: string; asPath: number[]; communities?: string[] | undefined; largeCommunities?: string[] | undefined;
  med?: number | undefined; localPref?: number | undefined; from?: string | undefined; stale?: boolean | undefined;
}): LearnedRoute {
  const out: { -readonly [K in keyof LearnedRoute]: LearnedRoute[K] } = {
    prefix: canonicalPrefix(r.prefix), nextHop: canonicalIp(r.nextHop), asPath: r.asPath,
  };
  if (r.communities && r.communities.length > 0) out.communities = r.communities;
  if (r.largeCommunities && r.largeCommunities.length > 0) out.largeCommunities = r.largeCommunities;
  if (r.med !== undefined) out.med = r.med;
  if (r.localPref !== undefined) out.localPref = r.localPref;
  if (r.from !== undefined) out.from = canonicalIp(r.from);
  if (r.stale === true) out.stale = true;
  return out;
}

/** A symbol-safe name for a label: [a-z0-9_.-], at most 40 chars. */
export function safeLabel(label: string): string {
  return label.toLowerCase().replace(/[^a-z0-9_.-]/g, '-').slice(0, 40) || 'peer';
}

/** Waits until no address in `ns` is tentative (IPv6 DAD), so the daemon can bind; at most 5 s. */
export async function waitAddressesUsable(ns: TestNetns): Promise<void> {
  await waitFor(async () => {
    const links = await ns.links();
    return links.every((l) => (l.addr_info ?? []).every((a) => (a as unknown as Record<string, unknown>).tentative !== true));
  }, { timeoutMs: 5000, intervalMs: 100, what: `IPv6 addresses in ${ns.name} to finish DAD (set net.ipv6.conf.*.accept_dad=0 to skip it)` });
}
