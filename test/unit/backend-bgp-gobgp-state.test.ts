import { describe, expect, it } from 'vitest';
import type { LearnedPath } from '../../src/backends/bgp/driver.js';
import type { Peer } from '../../src/backends/bgp/gobgp/api.js';
import { LearnedPaths } from '../../src/backends/bgp/gobgp/learned.js';
import { observe, PeerStatusTable } from '../../src/backends/bgp/gobgp/status.js';

const PEER = '198.18.0.2';

function path(prefix: string, nextHop = PEER, med = 0): LearnedPath {
  return { prefix, nextHop, asPathLength: 1, localPref: 100, med, origin: 0, ebgp: true };
}

/** A WatchEvent peer event (no counters) or, with afi_safis and timers, a ListPeer entry. */
function peer(session: 'ACTIVE' | 'ESTABLISHED' | 'IDLE', admin: 'UP' | 'PFX_CT' = 'UP', counters?: { accepted: number; eor: boolean }): Peer {
  const ipv4 = { afi: 'AFI_IP', safi: 'SAFI_UNICAST' };
  return {
    conf: { neighbor_address: PEER, peer_asn: 64512 },
    state: { neighbor_address: PEER, session_state: session, admin_state: admin },
    ...(counters && {
      timers: { state: { uptime: { seconds: 1_700_000_000, nanos: 0 } } },
      afi_safis: [{ state: { family: ipv4, accepted: counters.accepted }, mp_graceful_restart: { state: { end_of_rib_received: counters.eor } } }],
    }),
  };
}

describe('gobgp driver: session states', () => {
  it('maps gobgpd\'s session states; END_OF_INIT\'s empty peer is no observation', () => {
    expect(observe(peer('ACTIVE'))).toEqual({ address: PEER, state: 'active', admin: 'UP', counters: undefined });
    expect(observe({ state: { neighbor_address: '<nil>', session_state: 'IDLE' } })).toBeUndefined();
    expect(observe(peer('ESTABLISHED', 'UP', { accepted: 3, eor: true }), 1)?.counters)
      .toEqual({ received: 3, sent: 1, upSince: 1_700_000_000_000, endOfRib: true });
  });

  it('reports a state change, then the counters once established, then End-of-RIB once per session', () => {
    const table = new PeerStatusTable(500);
    expect(table.update(observe(peer('ACTIVE'))!)).toBeUndefined(); // not described: not ours
    table.describe(PEER, 64512, 'mesh');
    expect(table.update(observe(peer('ACTIVE'))!)).toMatchObject({ notify: true, stateChanged: true });
    expect(table.update(observe(peer('ACTIVE'))!)).toMatchObject({ notify: false, stateChanged: false });
    const up = table.update(observe(peer('ESTABLISHED'))!)!;
    expect(up).toMatchObject({ notify: true, status: { state: 'established', received: 0 } });
    expect(up.status.upSince).toBeTypeOf('number');
    expect(table.update(observe(peer('ESTABLISHED', 'UP', { accepted: 3, eor: true }), 1)!))
      .toMatchObject({ notify: true, endOfRib: true, status: { received: 3, sent: 1, upSince: 1_700_000_000_000 } });
    expect(table.update(observe(peer('ESTABLISHED', 'UP', { accepted: 4, eor: true }), 1)!)).toMatchObject({ notify: false, endOfRib: false });
    const down = table.update(observe(peer('IDLE'))!)!;
    expect(down.status).toMatchObject({ state: 'idle', upSince: undefined, lastError: expect.stringMatching(/went down/) });
    table.update(observe(peer('ESTABLISHED'))!);
    expect(table.update(observe(peer('ESTABLISHED', 'UP', { accepted: 1, eor: true }), 1)!)).toMatchObject({ endOfRib: true });
  });

  it('admin state PFX_CT is the prefix limit: reported once, with the reason', () => {
    const table = new PeerStatusTable(500);
    table.describe(PEER, 64512, 'mesh');
    table.update(observe(peer('ESTABLISHED'))!);
    const hit = table.update(observe(peer('IDLE', 'PFX_CT'))!)!;
    expect(hit).toMatchObject({ prefixLimitHit: true, status: { state: 'idle', lastError: expect.stringMatching(/more than 500 prefixes/) } });
    expect(table.update(observe(peer('IDLE', 'PFX_CT', { accepted: 0, eor: false }), 1)!)).toMatchObject({ prefixLimitHit: false });
    expect(table.list([PEER, '198.18.0.99'])).toHaveLength(1);
  });

  it('after EnablePeer, a hold-down seen again is a new trip only after a look showed it lifted', () => {
    const table = new PeerStatusTable(500);
    table.describe(PEER, 64512, 'mesh');
    expect(table.update(observe(peer('IDLE', 'PFX_CT'))!)).toMatchObject({ prefixLimitHit: true });
    const askedBefore = table.epoch();
    table.enabled(PEER);
    // A ListPeer asked before the enable: the old hold-down, neither a trip nor a hold-down now.
    expect(table.update(observe(peer('IDLE', 'PFX_CT', { accepted: 0, eor: false }), 0, askedBefore)!))
      .toMatchObject({ prefixLimitHit: false, stillHeldDown: false });
    // gobgpd answered EnablePeer before its session applied it: still held down, no new trip.
    expect(table.update(observe(peer('IDLE', 'PFX_CT'))!)).toMatchObject({ prefixLimitHit: false, stillHeldDown: true });
    expect(table.update(observe(peer('IDLE', 'PFX_CT', { accepted: 0, eor: false }), 0, table.epoch())!))
      .toMatchObject({ prefixLimitHit: false, stillHeldDown: true });
    // The hold-down lifted, then the peer came back still over its limit: a new trip.
    expect(table.update(observe(peer('ACTIVE'))!)).toMatchObject({ prefixLimitHit: false, stillHeldDown: false });
    expect(table.update(observe(peer('IDLE', 'PFX_CT'))!)).toMatchObject({ prefixLimitHit: true, stillHeldDown: false });
  });

  it('a ListPeer asked before EnablePeer cannot end the wait for the hold-down to lift', () => {
    const table = new PeerStatusTable(500);
    table.describe(PEER, 64512, 'mesh');
    table.update(observe(peer('IDLE', 'PFX_CT'))!);
    const askedBefore = table.epoch();
    table.enabled(PEER);
    table.update(observe(peer('IDLE', 'UP', { accepted: 0, eor: false }), 0, askedBefore)!);
    expect(table.update(observe(peer('IDLE', 'PFX_CT'))!)).toMatchObject({ prefixLimitHit: false, stillHeldDown: true });
  });

  it('gobgpd out of reach: every session idle with the reason, once', () => {
    const table = new PeerStatusTable(500);
    table.describe(PEER, 64512, 'mesh');
    table.update(observe(peer('ESTABLISHED', 'UP', { accepted: 1, eor: true }), 1)!);
    expect(table.lost('gobgpd gone')).toEqual([expect.objectContaining({ address: PEER, state: 'idle', upSince: undefined, lastError: 'gobgpd gone' })]);
    expect(table.lost('gobgpd gone')).toEqual([]);
    // Back: established again, and its End-of-RIB is news again.
    table.update(observe(peer('ESTABLISHED'))!);
    expect(table.update(observe(peer('ESTABLISHED', 'UP', { accepted: 1, eor: true }), 1)!)).toMatchObject({ endOfRib: true });
  });
});

describe('gobgp driver: learned paths', () => {
  it('events: announcements as they come, withdrawals of what the peer had only', () => {
    const learned = new LearnedPaths();
    expect(learned.apply(PEER, [path('10.244.1.0/24'), path('10.244.2.0/24')], [])).toEqual({ peer: PEER, announced: [path('10.244.1.0/24'), path('10.244.2.0/24')], withdrawn: [] });
    expect(learned.apply(PEER, [], ['10.244.2.0/24', '10.244.9.0/24'])).toEqual({ peer: PEER, announced: [], withdrawn: ['10.244.2.0/24'] });
    expect(learned.apply(PEER, [], ['10.244.9.0/24'])).toBeUndefined();
    expect(learned.count(PEER)).toBe(1);
  });

  it('a snapshot withdraws what gobgpd dropped without an event and adds what changed, but not over newer events', () => {
    const learned = new LearnedPaths();
    learned.apply(PEER, [path('10.244.1.0/24'), path('10.244.2.0/24'), path('10.244.3.0/24')], []);
    learned.begin(PEER);
    // While ListPath runs: 10.244.4.0 comes and 10.244.3.0 goes by events (the snapshot predates both).
    learned.apply(PEER, [path('10.244.4.0/24')], ['10.244.3.0/24']);
    const ev = learned.finish(PEER, [path('10.244.1.0/24'), path('10.244.3.0/24'), path('10.244.5.0/24', PEER, 9)]);
    expect(ev).toEqual({ peer: PEER, announced: [path('10.244.5.0/24', PEER, 9)], withdrawn: ['10.244.2.0/24'] });
    expect(learned.count(PEER)).toBe(3); // 1, 4, 5
    // Nothing changed: nothing to say.
    learned.begin(PEER);
    expect(learned.finish(PEER, [path('10.244.1.0/24'), path('10.244.4.0/24'), path('10.244.5.0/24', PEER, 9)])).toBeUndefined();
    // The session ended (gobgpd dropped the Adj-RIB-In silently): an empty snapshot withdraws all.
    learned.begin(PEER);
    expect([...learned.finish(PEER, [])?.withdrawn ?? []].sort()).toEqual(['10.244.1.0/24', '10.244.4.0/24', '10.244.5.0/24']);
  });

  it('a removed session withdraws everything it gave; an abandoned snapshot changes nothing', () => {
    const learned = new LearnedPaths();
    learned.apply(PEER, [path('10.244.1.0/24')], []);
    learned.begin(PEER);
    learned.abandon(PEER);
    expect(learned.count(PEER)).toBe(1);
    expect(learned.drop(PEER)).toEqual({ peer: PEER, announced: [], withdrawn: ['10.244.1.0/24'] });
    expect(learned.drop(PEER)).toBeUndefined();
  });
});
