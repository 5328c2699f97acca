/**
 * A BgpDriver without sockets for the bgp backend's unit tests: records what the backend asked
 * for (sessions, announcements, close) and lets a test play the peers (paths, End-of-RIB,
 * max-prefix, session states).
 *
 *   const driver = new FakeBgpDriver();
 *   const network = new BgpNetwork(ctx, options, driver.factory);
 *   driver.give('198.18.0.2', [path('10.244.2.0/24', '198.18.0.2')]);
 */
import { EventEmitter } from 'node:events';
import type { BgpDriver, DriverEvents, DriverOptions, DriverPeer, LearnedPath, PeerStatus } from '../../src/backends/bgp/driver.js';
import type { DriverFactory } from '../../src/backends/bgp/network.js';

export class FakeBgpDriver extends EventEmitter<DriverEvents> implements BgpDriver {
  sessions: readonly DriverPeer[] = [];
  announced: readonly { prefix: string; nextHop: string }[] = [];
  closed: { graceful: boolean } | undefined;
  startOptions: DriverOptions | undefined;
  readonly states = new Map<string, PeerStatus['state']>();

  readonly factory: DriverFactory = (_options, driverOptions) => {
    this.startOptions = driverOptions;
    return Promise.resolve(this);
  };

  setPeers(peers: readonly DriverPeer[]): Promise<void> {
    this.sessions = peers;
    return Promise.resolve();
  }

  announce(routes: readonly { prefix: string; nextHop: string }[]): Promise<void> {
    this.announced = routes;
    return Promise.resolve();
  }

  peers(): PeerStatus[] {
    return this.sessions.map((p) => ({
      address: p.address, asn: p.asn, role: p.role, state: this.states.get(p.address) ?? 'idle', upSince: undefined, received: 0, sent: 1, lastError: undefined,
    }));
  }

  close(opts: { graceful: boolean }): Promise<void> {
    this.closed = opts;
    return Promise.resolve();
  }

  /** A peer announces paths (and withdraws prefixes). */
  give(peer: string, announced: readonly LearnedPath[], withdrawn: readonly string[] = []): void {
    this.emit('paths', { peer, announced, withdrawn });
  }
}

/** An iBGP path with default attributes. */
export function path(prefix: string, nextHop: string, over: Partial<LearnedPath> = {}): LearnedPath {
  return { prefix, nextHop, asPathLength: 0, localPref: 100, med: 0, origin: 0, ebgp: false, ...over };
}
