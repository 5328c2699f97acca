import { EventEmitter } from 'node:events';
import { Speaker, type Family, type PeerRoutesEvent, type Route, type SessionEvent, type SpeakerPeerConfig } from '../../bgp/index.js';
import { clusterNetworksOf, familyOf, ownSubnetsOf, routedFamilies, type BgpDriver, type DriverEvents, type DriverOptions, type DriverPeer, type LearnedPath, type PeerStatus, type RoutedFamily } from './driver.js';
import { kernelTransport } from './transport.js';

/**
 * The bgp backend on Twill's own speaker (src/bgp): one Speaker in the agent, sessions added
 * and removed as the plan changes, the host's subnet as the one local route.
 */
export async function startBuiltinDriver(opts: DriverOptions): Promise<BgpDriver> {
  const speaker = await Speaker.start({
    local: { asn: opts.asn, routerId: opts.routerId },
    listen: [{ host: opts.listen.address, port: opts.listen.port }],
    transport: kernelTransport(),
    restarting: opts.restarted,
  });
  return new BuiltinDriver(speaker, opts);
}

/** What a session's configuration is compared by: a change means a new session. */
const sessionKey = (p: DriverPeer): string => JSON.stringify([p.asn, p.role, p.password, p.port, p.multihop]);

class BuiltinDriver extends EventEmitter<DriverEvents> implements BgpDriver {
  readonly #peers = new Map<string, {
    readonly peer: DriverPeer; readonly key: string; upSince?: number; lastError?: string; maxPrefixTripped?: boolean;
    /** The negotiated families whose End-of-RIB has not come yet in this session. */
    eorPending?: Set<Family>;
  }>();

  constructor(private readonly speaker: Speaker, private readonly opts: DriverOptions) {
    super();
    speaker.on('routes', (ev) => this.routes(ev));
    speaker.on('session', (ev) => this.session(ev));
    speaker.on('end-of-rib', (ev) => this.endOfRib(ev.peer, ev.family));
    speaker.on('warning', (err) => this.emit('warning', err));
  }

  setPeers(peers: readonly DriverPeer[]): Promise<void> {
    const wanted = new Map(peers.map((p) => [p.address, p]));
    for (const [address, entry] of this.#peers) {
      const want = wanted.get(address);
      if (want && sessionKey(want) === entry.key) continue;
      this.speaker.removePeer(address);
      this.#peers.delete(address);
    }
    for (const peer of peers) {
      if (this.#peers.has(peer.address)) continue;
      this.speaker.addPeer(speakerPeerConfig(peer, this.opts));
      this.#peers.set(peer.address, { peer, key: sessionKey(peer) });
    }
    return Promise.resolve();
  }

  announce(routes: readonly { readonly prefix: string; readonly nextHop: string }[]): Promise<void> {
    this.speaker.set(routes.map((r) => ({ prefix: r.prefix, nextHop: r.nextHop })));
    return Promise.resolve();
  }

  peers(): PeerStatus[] {
    const states = new Map(this.speaker.peerStates().map((s) => [s.address, s]));
    return [...this.#peers.values()].map(({ peer, upSince, lastError }) => {
      const s = states.get(peer.address);
      return {
        address: peer.address, asn: peer.asn, role: peer.role, state: s?.state ?? 'idle',
        upSince: s?.state === 'established' ? upSince : undefined,
        received: s?.received ?? 0, sent: s?.sent ?? 0, lastError: s?.lastError ?? lastError,
      };
    });
  }

  async close(opts: { readonly graceful: boolean }): Promise<void> {
    await this.speaker.close(opts.graceful ? 'twilld restarting' : 'twilld stopping', { graceful: opts.graceful });
  }

  private routes(ev: PeerRoutesEvent): void {
    const entry = this.#peers.get(ev.peer);
    if (!entry) return;
    const ebgp = entry.peer.asn !== this.opts.asn;
    const rejected = ev.rejected.map((r) => ({ prefix: r.route.prefix, reason: REJECT_REASONS[r.reason] ?? r.reason.replaceAll('-', '_') }));
    if (!entry.maxPrefixTripped && ev.rejected.some((r) => r.reason === 'max-prefix')) {
      entry.maxPrefixTripped = true;
      this.emit('max-prefix', { peer: ev.peer, limit: this.opts.maxPrefixes });
    }
    // The routes of one UPDATE share their attributes object: AS_PATH is measured once for them.
    let shared: Route['attributes'] | undefined;
    let template: LearnedPath | undefined;
    const announced = ev.announced.map((r): LearnedPath => {
      if (r.attributes !== shared || template === undefined || template.nextHop !== r.nextHop) {
        shared = r.attributes;
        template = learnedPath(r, ebgp);
        return template;
      }
      return { ...template, prefix: r.prefix };
    });
    this.emit('paths', {
      peer: ev.peer,
      announced,
      withdrawn: ev.withdrawn.map((w) => w.prefix),
      ...(rejected.length > 0 && { rejected }),
    });
  }

  /** The backend hears End-of-RIB once per session: when every negotiated family's has come (RFC 4724 §2 sends one per family). */
  private endOfRib(peer: string, family: Family): void {
    const entry = this.#peers.get(peer);
    if (!entry) return;
    const pending = entry.eorPending;
    if (pending === undefined) {
      this.emit('end-of-rib', { peer });
      return;
    }
    if (!pending.delete(family) || pending.size > 0) return;
    entry.eorPending = undefined;
    this.emit('end-of-rib', { peer });
  }

  private session(ev: SessionEvent): void {
    const entry = this.#peers.get(ev.peer);
    if (!entry) return;
    if (ev.state === 'established') {
      entry.upSince = Date.now();
      entry.maxPrefixTripped = false;
      const families = ev.negotiated?.families;
      entry.eorPending = families !== undefined && families.length > 1 ? new Set(families) : undefined;
    }
    if (ev.down) entry.lastError = ev.down.reason;
    const status = this.peers().find((p) => p.address === ev.peer);
    if (status) this.emit('peer', status);
  }
}

const SPEAKER_FAMILIES: Readonly<Record<RoutedFamily, Family>> = { ipv4: 'ipv4-unicast', ipv6: 'ipv6-unicast' };

/**
 * One planned session as Twill's speaker takes it: timers, graceful restart, import and export
 * rules. A dual-stack host's sessions negotiate both families (RFC 4760 multiprotocol
 * capability) over one transport; each family's routes carry their own next hop (an IPv6 one in
 * MP_REACH_NLRI).
 */
export function speakerPeerConfig(peer: DriverPeer, opts: DriverOptions): SpeakerPeerConfig {
  const families = routedFamilies(opts);
  const clusters = clusterNetworksOf(opts);
  const own = ownSubnetsOf(opts);
  const localAddress = familyOf(peer.address) === 'ipv6' && familyOf(opts.localAddress) === 'ipv4' ? opts.localAddressV6 : opts.localAddress;
  const range = (network: string): string => `${network},le=${familyOf(network) === 'ipv6' ? 128 : 32}`;
  return {
    address: peer.address,
    port: peer.port,
    asn: peer.asn,
    md5: peer.password,
    multihop: peer.multihop,
    localAddress,
    // The speaker's default (the transport's family alone) unless the host routes more.
    ...((families.length > 1 || familyOf(peer.address) !== families[0]) && { families: families.map((f) => SPEAKER_FAMILIES[f]) }),
    timers: { holdTime: opts.holdTimeS, connectRetry: 2 },
    gracefulRestartTime: opts.restartTimeS,
    routeReflectorClient: peer.role === 'reflector-client',
    // Exactly the host's subnet (issue 16: no route learned from a ToR leaks into the mesh);
    // a reflector passes the other hosts' subnets on as well.
    export: { announce: opts.reflector ? clusters.map(range) : own },
    import: {
      // Everything more specific inside the cluster networks; the backend decides the rest
      // against the leases (import-filter.ts), so the refusals are counted in one place.
      accept: clusters.map(range),
      rejectPrefixes: own,
      maxPrefixes: opts.maxPrefixes,
      // One limit for what a peer gives in both families together.
      ...(families.length > 1 && { maxPrefixScope: 'peer' as const }),
    },
  };
}

/** The speaker's reject reasons as import-filter.ts names them, so one metric label set covers both. */
const REJECT_REASONS: Readonly<Record<string, string>> = {
  'default-route': 'default_route',
  'not-accepted': 'outside_cluster',
  'own-prefix': 'own_subnet',
  'max-prefix': 'max_prefix',
};

/** The parts of a route the kernel route and ECMP need (driver.ts LearnedPath). */
export function learnedPath(route: Route, ebgp: boolean): LearnedPath {
  const a = route.attributes;
  // RFC 4271 §9.1.2.2 a: an AS_SET counts as one AS, a sequence as its length; confederation
  // segments do not count (RFC 5065 §5.3).
  let asPathLength = 0;
  for (const seg of a.asPath) {
    if (seg.type === 'sequence') asPathLength += seg.asns.length;
    else if (seg.type === 'set') asPathLength += 1;
  }
  return { prefix: route.prefix, nextHop: route.nextHop, asPathLength, localPref: a.localPref ?? 100, med: a.med ?? 0, origin: a.origin, ebgp };
}
