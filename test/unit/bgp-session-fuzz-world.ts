// The world of the session property test (bgp-session-fuzz.test.ts): one speaker on an in-memory
// transport and fake time, two configured peers and a stranger played by the test, the random
// steps they take, and the invariants that must hold after every step.

import { vi } from 'vitest';
import { Speaker, type BestChange, type SpeakerPeerConfig } from '../../src/bgp/index.js';
import { MAX_PENDING_INCOMING } from '../../src/bgp/session/collision.js';
import type { Family } from '../../src/bgp/types.js';
import { CeaseSubcode, encodeEndOfRib, encodeKeepalive, encodeNotification, encodeRouteRefresh, NotificationCode } from '../../src/bgp/wire/index.js';
import { MemoryNetwork, settle, type MemoryEnd } from '../helpers/bgp-memory-transport.js';
import { openFrom, updateFrom, withdrawalFrom } from '../helpers/bgp-scripted-peer.js';
import type { Rng } from './bgp-prng.js';

const LOCAL = { asn: 65001, routerId: '198.18.0.1' };
/** A local address configured for the iBGP peer's session (not the router id, not a listen address). */
const IBGP_LOCAL_ADDRESS = '198.18.1.1';
const ACCEPT = ['10.244.0.0/16,le=32', 'fd00:10:244::/48,le=128'];
const TIMERS = { holdTime: 9, openHold: 5, connectRetry: 1, reconnectMin: 0.2, reconnectMax: 2 };

interface FuzzPeer {
  readonly address: string;
  readonly routerId: string;
  readonly config: SpeakerPeerConfig;
}

const PEERS: readonly FuzzPeer[] = [
  // eBGP, passive, with a small max-prefix: the peer always dials.
  { address: '198.18.0.2', routerId: '2.2.2.2', config: { address: '198.18.0.2', asn: 65002, passive: true, timers: TIMERS, import: { accept: ACCEPT, maxPrefixes: 4 } } },
  // iBGP, active: the speaker dials too, so both directions and collisions happen.
  {
    address: '198.18.0.3', routerId: '3.3.3.3',
    config: { address: '198.18.0.3', asn: 65001, localAddress: IBGP_LOCAL_ADDRESS, families: ['ipv4-unicast', 'ipv6-unicast'], timers: TIMERS, import: { accept: ACCEPT } },
  },
];
const STRANGER = '198.18.0.66';

/** Next hops no speaker may install (RFC 4271 §6.3): its own addresses and loopback. */
const UNUSABLE_NEXT_HOPS = new Set([LOCAL.routerId, IBGP_LOCAL_ADDRESS, '127.0.0.1', '127.9.9.9', '::1']);
const NEXT_HOPS_V4 = [...UNUSABLE_NEXT_HOPS].filter((a) => !a.includes(':')).concat('198.18.0.9');
const PREFIXES = Array.from({ length: 10 }, (_, i) => `10.244.${i}.0/24`).concat('192.0.2.0/24');

/** The most connections from one peer the speaker may hold: an established one plus the pending cap. */
const MAX_INCOMING_HELD = MAX_PENDING_INCOMING + 1;

export class World {
  readonly trace: string[] = [];
  /** The kernel as an agent would keep it from 'best' events: "family prefix" → peer. */
  readonly kernel = new Map<string, string | undefined>();
  /** When each peer's session last left Established, and the graceful-restart time it left with. */
  readonly downs = new Map<string, { at: number; grace: number }>();
  readonly configured = new Set<string>();
  readonly opened = new WeakSet<MemoryEnd>();
  /** How often the interesting things happened, so the test can tell the generator still reaches them. */
  readonly seen = new Map<string, number>();
  /**
   * Set by a step that must leave this peer's Established session alone (RFC 4271 §6.8): a bare
   * connection, or an OPEN that does not prove the peer restarted (RFC 4724 §4.2).
   */
  mustStayUp: string | undefined;

  private constructor(readonly net: MemoryNetwork, readonly speaker: Speaker, readonly rng: Rng) {
    speaker.on('best', (changes) => this.applyBest(changes));
    speaker.on('session', (ev) => {
      if (ev.state === 'established') this.count('established');
      if (ev.from !== 'established') return;
      this.downs.set(ev.peer, { at: Date.now(), grace: ev.down?.gracefulRestartTime ?? 0 });
      if (ev.down?.gracefulRestartTime) this.count('down, routes kept as stale');
      if (ev.reason?.startsWith('the peer restarted')) this.count('restarted peer took over');
      if (ev.down?.notification?.direction === 'sent' && ev.down.notification.code === NotificationCode.CEASE) this.count(`Cease/${ev.down.notification.subcode} sent`);
    });
    speaker.on('routes', (ev) => {
      if (ev.announced.length > 0) this.count('routes learned');
      for (const r of ev.rejected) this.count(`rejected: ${r.reason}`);
    });
    speaker.on('collision', () => this.count('collision'));
  }

  static async create(rng: Rng): Promise<World> {
    const net = new MemoryNetwork();
    const speaker = await Speaker.start({ local: LOCAL, listen: [{ host: LOCAL.routerId, port: 179 }], transport: net.transport });
    const world = new World(net, speaker, rng);
    for (const p of PEERS) world.addPeer(p);
    return world;
  }

  addPeer(p: FuzzPeer): void {
    this.speaker.addPeer(p.config);
    this.configured.add(p.address);
  }

  state(address: string): string | undefined {
    return this.speaker.peerStates().find((s) => s.address === address)?.state;
  }

  /** One random step; returns what it did, for the trace. */
  async step(): Promise<string> {
    this.mustStayUp = undefined;
    const r = this.rng;
    // Mostly a connection that sent its OPEN (where the session is), else one of the newest.
    const live = this.net.ends.filter((e) => !e.closed);
    const opened = live.filter((e) => this.opened.has(e));
    const end = live.length === 0 || r.next() < 0.15 ? undefined : r.pick(opened.length > 0 && r.next() < 0.6 ? opened : live.slice(-4));
    const what = r.int(100);
    if (end === undefined || what < 10) return this.dial();
    if (what < 25) return this.open(end);
    if (what < 32) return this.send(end, encodeKeepalive(), 'KEEPALIVE');
    if (what < 47) return this.update(end);
    if (what < 51) return this.send(end, encodeEndOfRib(r.pick<Family>(['ipv4-unicast', 'ipv6-unicast'])), 'End-of-RIB');
    if (what < 53) return this.send(end, encodeRouteRefresh('ipv4-unicast'), 'ROUTE-REFRESH');
    if (what < 58) return this.notify(end);
    if (what < 61) return this.send(end, Buffer.concat([Buffer.alloc(16, 0xff), r.bytes(1 + r.int(40))]), 'garbage');
    if (what < 65) {
      end.end();
      return `FIN on ${this.label(end)}`;
    }
    if (what < 69) {
      end.reset();
      return `reset on ${this.label(end)}`;
    }
    if (what < 82) return this.advance(r.pick([10, 300, 1_000, 2_500, 5_000, 12_000]));
    if (what < 88) return this.answerDial();
    if (what < 92) return this.setLocal();
    return this.togglePeer();
  }

  private dial(): string {
    const from = this.rng.next() < 0.15 ? STRANGER : this.rng.pick(PEERS).address;
    if (this.state(from) === 'established') this.mustStayUp = from;
    return `dial: ${this.label(this.net.dial(from))}`;
  }

  /** An OPEN, mostly right, sometimes with the wrong AS or identifier, with or without graceful restart. */
  private open(end: MemoryEnd): string {
    const r = this.rng;
    const peer = PEERS.find((p) => p.address === end.address);
    const asn = peer && r.next() < 0.9 ? peer.config.asn : 65099;
    const routerId = peer && r.next() < 0.85 ? peer.routerId : '9.9.9.9';
    const gracefulRestart = r.next() < 0.4 ? undefined : r.pick([0, 1, 2, 5]);
    const holdTime = r.pick([0, 3, 9, 30]);
    const families: Family[] = r.next() < 0.5 ? ['ipv4-unicast'] : ['ipv4-unicast', 'ipv6-unicast'];
    const keepalive = r.next() < 0.7;
    const up = this.speaker.peerStates().find((s) => s.address === end.address && s.state === 'established');
    const restartProven = up?.negotiated?.peerRestartTime !== undefined && up.negotiated.peerRouterId === routerId;
    if (up && !this.opened.has(end) && !restartProven) this.mustStayUp = end.address;
    this.opened.add(end);
    end.send(Buffer.concat([openFrom({ asn, routerId, holdTime, gracefulRestart, families }), ...(keepalive ? [encodeKeepalive()] : [])]));
    return `OPEN as ${asn} id ${routerId} hold ${holdTime} gr ${String(gracefulRestart)} ${families.join('+')}${keepalive ? ' + KEEPALIVE' : ''} on ${this.label(end)}`;
  }

  private update(end: MemoryEnd): string {
    const r = this.rng;
    const prefixes = [...new Set(Array.from({ length: 1 + r.int(6) }, () => r.pick(PREFIXES)))];
    if (r.next() < 0.25) return this.send(end, withdrawalFrom(prefixes), `withdraw ${prefixes.join(' ')}`);
    if (r.next() < 0.15) {
      const nextHop = r.pick(['::1', 'fd00::2']);
      return this.send(end, updateFrom({ family: 'ipv6-unicast', prefixes: ['fd00:10:244:1::/64'], nextHop }), `announce fd00:10:244:1::/64 via ${nextHop}`);
    }
    const nextHop = r.next() < 0.6 ? end.address : r.pick(NEXT_HOPS_V4);
    return this.send(end, updateFrom({ prefixes, nextHop }), `announce ${prefixes.join(' ')} via ${nextHop}`);
  }

  private notify(end: MemoryEnd): string {
    const r = this.rng;
    const [code, subcode] = r.next() < 0.6 ? [NotificationCode.CEASE, r.pick([CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET])] : [1 + r.int(6), r.int(4)];
    return this.send(end, encodeNotification(code, subcode), `NOTIFICATION ${code}/${subcode}`);
  }

  /** Moves the clock in steps of at most 250 ms, letting the streams deliver between them. */
  async advance(ms: number): Promise<string> {
    for (let left = ms; left > 0; left -= 250) {
      vi.advanceTimersByTime(Math.min(left, 250));
      await settle();
    }
    return `advance ${ms} ms`;
  }

  private answerDial(): string {
    const dial = this.net.pendingDials[0];
    if (!dial) return 'no dial to answer';
    const accept = this.rng.next() < 0.75;
    const end = this.net.answer(dial, accept);
    return `${accept ? 'accept' : 'refuse'} the speaker's dial to ${dial.opts.host}${end ? `: ${this.label(end)}` : ''}`;
  }

  private setLocal(): string {
    const prefixes = ['10.244.100.0/24', '10.244.101.0/24'].filter(() => this.rng.next() < 0.5);
    this.speaker.set(prefixes.map((prefix) => ({ prefix })));
    return `set ${prefixes.join(' ') || 'nothing'}`;
  }

  private togglePeer(): string {
    const p = this.rng.pick(PEERS);
    if (this.configured.delete(p.address)) {
      this.speaker.removePeer(p.address);
      return `remove peer ${p.address}`;
    }
    this.addPeer(p);
    return `add peer ${p.address}`;
  }

  private send(end: MemoryEnd, message: Buffer, what: string): string {
    end.send(message);
    return `${what} on ${this.label(end)}`;
  }

  private label(end: MemoryEnd): string {
    return `#${this.net.ends.indexOf(end)} (${end.address}${end.dialledBySpeaker ? ', dialled by the speaker' : ''})`;
  }

  private count(what: string): void {
    this.seen.set(what, (this.seen.get(what) ?? 0) + 1);
  }

  private applyBest(changes: readonly BestChange[]): void {
    for (const c of changes) {
      const key = `${c.family} ${c.prefix}`;
      if (c.route === undefined) this.kernel.delete(key);
      else this.kernel.set(key, c.peerId);
    }
  }

  /** Every invariant that must hold between steps; returns the ones that do not. */
  violations(): string[] {
    const out: string[] = [];
    const best = new Map([...this.speaker.bestRoutes()].map((b) => [`${b.route.family} ${b.route.prefix}`, b]));
    // The 'best' events, applied in order, give exactly the Loc-RIB (what an agent installs).
    const model = [...this.kernel].map(([k, p]) => `${k} ${String(p)}`).sort();
    const actual = [...best].map(([k, b]) => `${k} ${String(b.peerId)}`).sort();
    if (model.join() !== actual.join()) out.push(`best events ${JSON.stringify(model)} differ from the Loc-RIB ${JSON.stringify(actual)}`);
    for (const [key, b] of best) {
      if (b.peerId === undefined) continue;
      if (!this.configured.has(b.peerId)) out.push(`best route ${key} from ${b.peerId}, which is not configured`);
      else if (![...this.speaker.peerRoutes(b.peerId)].includes(b.route)) out.push(`best route ${key} is not in ${b.peerId}'s Adj-RIB-In`);
    }
    const stats = new Map(this.speaker.stats().peers.map((s) => [s.peerId, s]));
    for (const p of PEERS) {
      const routes = [...this.speaker.peerRoutes(p.address)];
      for (const route of routes) if (UNUSABLE_NEXT_HOPS.has(route.nextHop)) out.push(`${p.address}: ${route.prefix} accepted with next hop ${route.nextHop}`);
      const max = p.config.import?.maxPrefixes ?? Infinity;
      for (const family of ['ipv4-unicast', 'ipv6-unicast'] as const) {
        const n = routes.filter((route) => route.family === family).length;
        if (n > max) out.push(`${p.address}: ${n} ${family} routes, max-prefix ${max}`);
      }
      // RFC 4724 §4.2: routes outlive their session only by the restart time, and stay stale no longer either.
      const down = this.downs.get(p.address);
      const expired = down !== undefined && Date.now() >= down.at + down.grace * 1000;
      if (expired && this.state(p.address) !== 'established' && routes.length > 0) out.push(`${p.address}: ${routes.length} routes kept ${Date.now() - down.at} ms after the session ended (restart time ${down.grace} s)`);
      if (expired && (stats.get(p.address)?.stale ?? 0) > 0) out.push(`${p.address}: stale routes ${Date.now() - down.at} ms after the session ended (restart time ${down.grace} s)`);
      if (!this.configured.has(p.address) && routes.length > 0) out.push(`${p.address}: removed, yet ${routes.length} routes kept`);
      const held = this.net.ends.filter((e) => e.address === p.address && !e.dialledBySpeaker && e.openAtSpeaker).length;
      if (held > MAX_INCOMING_HELD) out.push(`${p.address}: the speaker holds ${held} incoming connections`);
    }
    if (this.net.ends.some((e) => e.address === STRANGER && e.openAtSpeaker)) out.push('a connection from an unconfigured address is still open');
    return out;
  }
}
