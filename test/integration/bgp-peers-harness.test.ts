/**
 * Proves the BGP peer harness (test/helpers/bgp-peers.ts) against the real daemons: three
 * namespaces in a triangle, one daemon each, every kind active on one session and passive on
 * another, and every reader checked.
 *
 *        gobgp (AS 4200000001) ──eBGP v4──▶ bird (AS 65002)       gobgp active, bird passive
 *        bird ──iBGP v4──▶ frr (AS 65002), frr ──iBGP v6──▶ bird   (arrow: the side that connects)
 *        frr ──eBGP v4 (TCP MD5) and v6──▶ gobgp                   frr active, gobgp passive
 *
 * announceMany(100000) timings are printed (console.log), not asserted. Set
 * TWILL_BGP_BENCH_1M=1 to also time 1,000,000 prefixes (minutes; not part of the normal run).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bgpDaemonsAvailable, parseBirdRoutes, startPeerDaemon, type LearnedRoute, type PeerDaemon, type PeerFamily } from '../helpers/bgp-peers.js';
import { run } from '../helpers/exec.js';
import { groupId } from '../helpers/names.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const avail = bgpDaemonsAvailable();
const AS_GOBGP = 4200000001;
const AS_CORE = 65002;
const MD5 = 'tw1ll-s3cret';

/** Addresses: A–B 198.18.0.0/30, B–C 198.18.1.0/24 + fd00:198:18:1::/64, C–A 198.18.0.8/30 + fd00:198:18:2::/64. */
const IP = {
  gobgpToBird: '198.18.0.1', birdToGobgp: '198.18.0.2',
  birdToFrr: '198.18.1.1', frrToBird: '198.18.1.2', birdToFrr6: 'fd00:198:18:1::1', frrToBird6: 'fd00:198:18:1::2',
  frrToGobgp: '198.18.0.9', gobgpToFrr: '198.18.0.10', frrToGobgp6: 'fd00:198:18:2::1', gobgpToFrr6: 'fd00:198:18:2::2',
};

function find(routes: readonly LearnedRoute[], prefix: string): LearnedRoute | undefined {
  return routes.find((r) => r.prefix === prefix);
}

/** Waits until `peer` has learned `prefix` (and `check` holds for it); returns the route. */
async function waitRoute(peer: PeerDaemon, prefix: string, family: PeerFamily = 'ipv4-unicast', timeoutMs = 15_000): Promise<LearnedRoute> {
  return waitFor(async () => find(await peer.learned(family), prefix), { timeoutMs, intervalMs: 200, what: `${peer.label} to learn ${prefix}` });
}

async function waitGone(peer: PeerDaemon, prefix: string, family: PeerFamily = 'ipv4-unicast', timeoutMs = 15_000): Promise<void> {
  await waitFor(async () => !find(await peer.learned(family), prefix), { timeoutMs, intervalMs: 200, what: `${peer.label} to drop ${prefix}` });
}

async function waitCount(peer: PeerDaemon, atLeast: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await waitFor(async () => (await peer.learnedCount()) >= atLeast, { timeoutMs, intervalMs: 250, what: `${peer.label} to learn ${atLeast} routes` });
  return Date.now() - t0;
}

describe('parseBirdRoutes', () => {
  it('reads routes, second routes of a net, AS sets, continued attributes and IPv6 next hops', () => {
    const out = [
      'BIRD 2.0.12 ready.',
      'Table master6:',
      'fd00:10:3::/64       unicast [n_fd00_198_18_1__2 09:23:16.855] * (100) [i]',
      '\tvia fd00:198:18:1::2 on p1',
      '\tType: BGP univ',
      '\tBGP.origin: IGP',
      '\tBGP.as_path: 65001 {65010 65011} 65002',
      '\tBGP.next_hop: fd00:198:18:1::2 fe80::1',
      '\tBGP.local_pref: 100',
      '\tBGP.community: (65000,1) (65000,2)',
      '\t\t(65000,3)',
      '                     unicast [n_x 09:23:17.000] (100) [AS65009i]',
      '\tvia fd00:198:18:1::9 on p1',
      '\tBGP.as_path: 65009',
      '\tBGP.next_hop: fd00:198:18:1::9',
      '\tBGP.large_community: (4200000001, 1, 2)',
      '\tBGP.med: 7',
      '',
    ].join('\n');
    expect(parseBirdRoutes(out, new Map([['n_fd00_198_18_1__2', 'fd00:198:18:1::2']]))).toEqual([
      {
        prefix: 'fd00:10:3::/64', nextHop: 'fd00:198:18:1::2', asPath: [65001, 65010, 65011, 65002],
        communities: ['65000:1', '65000:2', '65000:3'], localPref: 100, from: 'fd00:198:18:1::2',
      },
      { prefix: 'fd00:10:3::/64', nextHop: 'fd00:198:18:1::9', asPath: [65009], largeCommunities: ['4200000001:1:2'], med: 7 },
    ]);
  });
});

describe.skipIf(!isRoot || !avail.gobgp || !avail.bird || !avail.frr)('BGP peer harness: options', () => {
  useCleanup();

  it('two daemons share a namespace on their own addresses; port, exportLearned, maxPrefix, acceptAll, multihop, graceful restart', async () => {
    const group = groupId();
    const [nsD, nsE] = await Promise.all([createTestNetns('pair', { group }), createTestNetns('hub', { group })]);
    await connectNetns(nsD, nsE, { a: { ifname: 'to-hub', cidr: '198.18.2.1/24' }, b: { ifname: 'to-pair', cidr: '198.18.2.3/24' } });
    await nsD.netlink((nl) => nl.addAddress('to-hub', '198.18.2.2/24'));
    const hub = await startPeerDaemon({
      kind: 'gobgp', netns: nsE, asn: 65010, routerId: '198.18.2.3', port: 1179, exportLearned: true, label: 'hub',
      neighbors: [
        { address: '198.18.2.1', asn: 65011, passive: true, gracefulRestart: true },
        { address: '198.18.2.2', asn: 65012, passive: true, holdTime: 30 },
      ],
    });
    const [birdD, frrD] = await Promise.all([
      startPeerDaemon({
        kind: 'bird', netns: nsD, asn: 65011, routerId: '198.18.2.1', listenAddress: '198.18.2.1', port: 1790, maxPrefix: 2,
        neighbors: [{ address: '198.18.2.3', asn: 65010, port: 1179, gracefulRestart: true }],
      }),
      startPeerDaemon({
        kind: 'frr', netns: nsD, asn: 65012, routerId: '198.18.2.2', listenAddress: '198.18.2.2', acceptAll: false,
        neighbors: [{ address: '198.18.2.3', asn: 65010, port: 1179, multihop: 2, holdTime: 30 }],
        announce: [{ prefix: '10.12.0.0/24', communities: ['65012:1'] }],
      }),
    ]);
    await Promise.all([birdD.waitEstablished('198.18.2.3'), frrD.waitEstablished('198.18.2.3'),
      hub.waitEstablished('198.18.2.1'), hub.waitEstablished('198.18.2.2')]);
    const both = (await run('ss', ['-ltnH'], { netns: nsD.name })).stdout;
    expect(both).toMatch(/198\.18\.2\.1:1790/);
    expect(both).toMatch(/198\.18\.2\.2:179\b/);

    // The hub passes FRR's route on (exportLearned); BIRD sees it with both ASes.
    expect(await waitRoute(birdD, '10.12.0.0/24')).toMatchObject({ asPath: [65010, 65012], communities: ['65012:1'], nextHop: '198.18.2.3' });
    // FRR imports nothing (acceptAll: false), though the hub sends it BIRD's route.
    await birdD.announce('10.11.0.0/24');
    await waitRoute(hub, '10.11.0.0/24');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await frrD.learned()).toEqual([]);
    expect(await frrD.learnedCount()).toBe(0);

    // A third prefix breaks BIRD's import limit of 2: BIRD shuts the session down.
    await hub.announce('10.10.0.0/24');
    await hub.announce('10.10.1.0/24');
    await birdD.waitNotEstablished('198.18.2.3', 10_000);
    expect(await birdD.sessionState('198.18.2.3')).not.toBe('established');
  });
});

describe.skipIf(!isRoot || !avail.gobgp || !avail.bird || !avail.frr)('BGP peer harness: gobgp, BIRD and FRR', () => {
  useCleanup();
  let nsA: TestNetns;
  let nsB: TestNetns;
  let nsC: TestNetns;
  let gobgp: PeerDaemon;
  let bird: PeerDaemon;
  let frr: PeerDaemon;
  const timings: string[] = [];

  beforeAll(async () => {
    const group = groupId();
    [nsA, nsB, nsC] = await Promise.all([createTestNetns('gobgp', { group }), createTestNetns('bird', { group }), createTestNetns('frr', { group })]);
    for (const ns of [nsA, nsB, nsC]) {
      ns.writeSysctl('net/ipv6/conf/all/accept_dad', 0); // addresses usable at once: daemons bind them
      ns.writeSysctl('net/ipv6/conf/default/accept_dad', 0);
    }
    await connectNetns(nsA, nsB, { a: { ifname: 'to-bird', cidr: `${IP.gobgpToBird}/30` }, b: { ifname: 'to-gobgp', cidr: `${IP.birdToGobgp}/30` } });
    await connectNetns(nsB, nsC, { a: { ifname: 'to-frr', cidr: `${IP.birdToFrr}/24` }, b: { ifname: 'to-bird', cidr: `${IP.frrToBird}/24` } });
    await nsB.netlink((nl) => nl.addAddress('to-frr', `${IP.birdToFrr6}/64`));
    await nsC.netlink((nl) => nl.addAddress('to-bird', `${IP.frrToBird6}/64`));
    await connectNetns(nsC, nsA, { a: { ifname: 'to-gobgp', cidr: `${IP.frrToGobgp}/30` }, b: { ifname: 'to-frr', cidr: `${IP.gobgpToFrr}/30` } });
    await nsC.netlink((nl) => nl.addAddress('to-gobgp', `${IP.frrToGobgp6}/64`));
    await nsA.netlink((nl) => nl.addAddress('to-frr', `${IP.gobgpToFrr6}/64`));

    const t0 = Date.now();
    [gobgp, bird, frr] = await Promise.all([
      startPeerDaemon({
        kind: 'gobgp', netns: nsA, asn: AS_GOBGP, routerId: IP.gobgpToBird, label: 'gobgp',
        neighbors: [
          { address: IP.birdToGobgp, asn: AS_CORE },
          { address: IP.frrToGobgp, asn: AS_CORE, passive: true, md5: MD5 },
          { address: IP.frrToGobgp6, asn: AS_CORE, passive: true },
        ],
      }),
      startPeerDaemon({
        kind: 'bird', netns: nsB, asn: AS_CORE, routerId: IP.birdToGobgp, label: 'bird',
        neighbors: [
          { address: IP.gobgpToBird, asn: AS_GOBGP, passive: true },
          { address: IP.frrToBird, asn: AS_CORE },
          { address: IP.frrToBird6, asn: AS_CORE, passive: true },
        ],
      }),
      startPeerDaemon({
        kind: 'frr', netns: nsC, asn: AS_CORE, routerId: IP.frrToBird, label: 'frr',
        neighbors: [
          { address: IP.birdToFrr, asn: AS_CORE, passive: true },
          { address: IP.birdToFrr6, asn: AS_CORE },
          { address: IP.gobgpToFrr, asn: AS_GOBGP, md5: MD5 },
          { address: IP.gobgpToFrr6, asn: AS_GOBGP },
        ],
        announce: [{ prefix: '10.3.0.0/24' }],
      }),
    ]);
    timings.push(`start all three daemons: ${Date.now() - t0} ms`);
  });

  afterAll(() => {
    if (timings.length > 0) console.log(`bgp-peers harness timings:\n  ${timings.join('\n  ')}`);
  });

  it('brings every session up, each kind active on one side and passive on the other', async () => {
    const t0 = Date.now();
    await Promise.all([
      gobgp.waitEstablished(IP.birdToGobgp), bird.waitEstablished(IP.gobgpToBird),
      bird.waitEstablished(IP.frrToBird), frr.waitEstablished(IP.birdToFrr),
      bird.waitEstablished(IP.frrToBird6), frr.waitEstablished(IP.birdToFrr6),
      frr.waitEstablished(IP.gobgpToFrr), gobgp.waitEstablished(IP.frrToGobgp),
      frr.waitEstablished(IP.gobgpToFrr6), gobgp.waitEstablished(IP.frrToGobgp6),
    ]);
    timings.push(`all sessions established: ${Date.now() - t0} ms after start`);
    expect(await gobgp.sessionState(IP.birdToGobgp)).toBe('established');
    expect(await bird.sessionState('198.18.0.1')).toBe('established');
    expect(await frr.sessionState(IP.birdToFrr6)).toBe('established');
    await expect(bird.sessionState('198.18.9.9')).rejects.toThrow(/no neighbor/);
    expect(gobgp.pid).toBeGreaterThan(0);
    expect(frr.running).toBe(true);
  });

  it('gobgp ↔ bird: eBGP IPv4 with a 4-octet ASN, attributes, withdraw, and no transit', async () => {
    await gobgp.announce('10.1.0.0/24', { communities: ['65000:1', '65000:2'], largeCommunities: ['4200000001:1:2'], med: 50 });
    await bird.announce('10.2.0.0/24', { communities: ['65002:7'] });

    expect(await waitRoute(bird, '10.1.0.0/24')).toEqual({
      prefix: '10.1.0.0/24', nextHop: IP.gobgpToBird, asPath: [AS_GOBGP], communities: ['65000:1', '65000:2'],
      largeCommunities: ['4200000001:1:2'], med: 50, localPref: 100, from: IP.gobgpToBird,
    });
    const atGobgp = await waitRoute(gobgp, '10.2.0.0/24');
    expect(atGobgp).toMatchObject({ nextHop: IP.birdToGobgp, asPath: [AS_CORE], communities: ['65002:7'], from: IP.birdToGobgp });
    expect(atGobgp.localPref).toBeUndefined(); // eBGP: no LOCAL_PREF on the wire

    // FRR gets gobgp's route straight from gobgp (MD5 session), never through BIRD (no transit).
    expect(await waitRoute(frr, '10.1.0.0/24')).toMatchObject({ nextHop: IP.gobgpToFrr, asPath: [AS_GOBGP], med: 50, from: IP.gobgpToFrr });
    expect((await frr.learned()).filter((r) => r.prefix === '10.1.0.0/24')).toHaveLength(1);
    // gobgp gets BIRD's route from BIRD only (FRR does not pass on iBGP routes it learned).
    expect((await gobgp.learned()).filter((r) => r.prefix === '10.2.0.0/24')).toHaveLength(1);

    await gobgp.withdraw('10.1.0.0/24');
    await Promise.all([waitGone(bird, '10.1.0.0/24'), waitGone(frr, '10.1.0.0/24')]);
    await bird.withdraw('10.2.0.0/24');
    await waitGone(gobgp, '10.2.0.0/24');
    // Announce again for the restart test: must come back after restarts.
    await gobgp.announce('10.1.0.0/24', { communities: ['65000:1'] });
    await waitRoute(bird, '10.1.0.0/24');
  });

  it('bird ↔ frr: iBGP IPv4 and IPv6, next hops kept, withdraw', async () => {
    // FRR's config-time announcement.
    expect(await waitRoute(bird, '10.3.0.0/24')).toEqual({
      prefix: '10.3.0.0/24', nextHop: IP.frrToBird, asPath: [], localPref: 100, med: 0, from: IP.frrToBird,
    });
    await bird.announce('fd00:10:2::/64', { largeCommunities: ['65002:6:6'] });
    await frr.announce('fd00:10:3::/64', { communities: ['65002:3'] });
    await bird.announce('10.2.1.0/24', { nextHop: '198.18.1.99' }); // iBGP: a third-party next hop survives
    await frr.announce('10.3.1.0/24', { nextHop: '198.18.1.98', med: 5 });

    expect(await waitRoute(frr, 'fd00:10:2::/64', 'ipv6-unicast')).toMatchObject({
      nextHop: IP.birdToFrr6, asPath: [], largeCommunities: ['65002:6:6'], localPref: 100, from: IP.birdToFrr6,
    });
    expect(await waitRoute(bird, 'fd00:10:3::/64', 'ipv6-unicast')).toMatchObject({
      nextHop: IP.frrToBird6, asPath: [], communities: ['65002:3'], localPref: 100, from: IP.frrToBird6,
    });
    expect(await waitRoute(frr, '10.2.1.0/24')).toMatchObject({ nextHop: '198.18.1.99', asPath: [], from: IP.birdToFrr });
    expect(await waitRoute(bird, '10.3.1.0/24')).toMatchObject({ nextHop: '198.18.1.98', asPath: [], med: 5 });
    // The IPv6 routes stay in their family.
    expect(find(await bird.learned('ipv4-unicast'), 'fd00:10:3::/64')).toBeUndefined();
    expect(await bird.learnedCount('ipv6-unicast')).toBe(1);

    await frr.withdraw('fd00:10:3::/64');
    await bird.withdraw('fd00:10:2::/64');
    await Promise.all([waitGone(bird, 'fd00:10:3::/64', 'ipv6-unicast'), waitGone(frr, 'fd00:10:2::/64', 'ipv6-unicast')]);
    expect(await frr.learnedCount('ipv6-unicast')).toBe(0);
  });

  it('frr ↔ gobgp: eBGP over TCP MD5 and over IPv6, counters agree with learned()', async () => {
    await gobgp.announce('fd00:10:1::/64', { communities: ['65001:6'] });
    await frr.announce('fd00:10:4::/64');
    expect(await waitRoute(frr, 'fd00:10:1::/64', 'ipv6-unicast')).toMatchObject({
      nextHop: IP.gobgpToFrr6, asPath: [AS_GOBGP], communities: ['65001:6'], from: IP.gobgpToFrr6,
    });
    expect(await waitRoute(gobgp, 'fd00:10:4::/64', 'ipv6-unicast')).toMatchObject({ nextHop: IP.frrToGobgp6, asPath: [AS_CORE], from: IP.frrToGobgp6 });
    expect(await gobgp.learnedCount('ipv6-unicast')).toBe(1);

    expect(await waitRoute(gobgp, '10.3.0.0/24')).toMatchObject({ nextHop: IP.frrToGobgp, asPath: [AS_CORE], from: IP.frrToGobgp });
    // FRR rewrites a requested next hop on eBGP to its own address unless it is on the shared link.
    expect(await waitRoute(gobgp, '10.3.1.0/24')).toMatchObject({ asPath: [AS_CORE], med: 5 });
    await waitFor(async () => (await gobgp.learnedCount()) === (await gobgp.learned()).length, { what: 'gobgp counters to settle' });
    expect(await frr.learnedCount()).toBe((await frr.learned()).length);
    expect(await bird.learnedCount()).toBe((await bird.learned()).length);
  });

  // gobgpd 3.10 waits 5-10 s (a random 1-2x of its 5 s minimum) before each connection attempt, so a
  // session where gobgp is the active side comes back slowly: after a restart each case waits only
  // for sessions that the other side (re)opens. The gobgp -> bird session is checked again before the benchmark.
  it.each(['gobgp', 'bird', 'frr'] as const)('kill(%s): its peers drop the session at once; restart(): back with its routes', async (kind) => {
    const cases = {
      gobgp: { d: gobgp, down: [[bird, IP.gobgpToBird], [frr, IP.gobgpToFrr]], back: [[frr, IP.gobgpToFrr]], watch: [frr, '10.1.0.0/24'] },
      bird: { d: bird, down: [[gobgp, IP.birdToGobgp], [frr, IP.birdToFrr], [frr, IP.birdToFrr6]], back: [[frr, IP.birdToFrr], [frr, IP.birdToFrr6]], watch: [frr, '10.2.1.0/24'] },
      frr: { d: frr, down: [[bird, IP.frrToBird], [gobgp, IP.frrToGobgp]], back: [[bird, IP.frrToBird], [gobgp, IP.frrToGobgp]], watch: [bird, '10.3.0.0/24'] },
    } as const;
    const { d, down, back, watch: [watcher, prefix] } = cases[kind];
    await Promise.all(down.map(([p, a]) => p.waitEstablished(a)));
    await waitRoute(watcher, prefix);
    const pid = d.pid;
    const t0 = Date.now();
    await d.kill();
    expect(d.running).toBe(false);
    await Promise.all(down.map(([p, a]) => p.waitNotEstablished(a, 9000)));
    timings.push(`kill ${kind}: peers left Established after ${Date.now() - t0} ms`);
    await waitGone(watcher, prefix);

    const t1 = Date.now();
    await d.restart();
    expect(d.pid).not.toBe(pid);
    expect(d.running).toBe(true);
    await Promise.all(back.map(([p, a]) => p.waitEstablished(a, 20_000)));
    await waitRoute(watcher, prefix, 'ipv4-unicast', 20_000); // announced at run time before the kill
    timings.push(`restart ${kind}: sessions and routes back after ${Date.now() - t1} ms`);
    expect(d.output()).toContain(`pid ${pid}`); // the killed process's log is kept
  });

  it('pause(): the peer keeps the session until its hold timer (9 s) expires; resume(): back', async () => {
    await bird.waitEstablished(IP.frrToBird);
    const t0 = Date.now();
    frr.pause();
    try {
      await bird.waitNotEstablished(IP.frrToBird, 15_000);
    } finally {
      frr.resume();
    }
    const held = Date.now() - t0;
    timings.push(`pause frr: bird dropped the session after ${held} ms (hold time 9 s)`);
    expect(held).toBeGreaterThan(3000); // not at once (kill: < 300 ms); the last keepalive came a few s before the pause
    expect(held).toBeLessThan(12_000);
    const t1 = Date.now();
    await Promise.all([bird.waitEstablished(IP.frrToBird), frr.waitEstablished(IP.birdToFrr)]);
    timings.push(`resume frr: session back after ${Date.now() - t1} ms`);
  });

  it('announceMany(100000) on bird and gobgp (timings printed, not asserted)', async () => {
    const N = 100_000;
    await Promise.all([gobgp.waitEstablished(IP.birdToGobgp), bird.waitEstablished(IP.gobgpToBird), frr.waitEstablished(IP.birdToFrr)]);
    const gobgpBefore = await gobgp.learnedCount();
    const frrBefore = await frr.learnedCount();
    let t0 = Date.now();
    await bird.announceMany(N);
    const birdLocal = Date.now() - t0;
    const [toGobgp, toFrr] = await Promise.all([waitCount(gobgp, gobgpBefore + N, 60_000), waitCount(frr, frrBefore + N, 60_000)]);
    timings.push(`bird announceMany(${N}) /32s: in BIRD's table after ${birdLocal} ms; gobgp has them ${birdLocal + toGobgp} ms, frr ${birdLocal + toFrr} ms after the call`);
    expect(find(await gobgp.learned(), '100.64.0.0/32')).toMatchObject({ asPath: [AS_CORE], nextHop: IP.birdToGobgp });

    // gobgpd 3.10 takes 4-5 s for 100k paths with one established peer but 20-30 s with two: leave it one.
    await frr.stop();
    await gobgp.waitNotEstablished(IP.frrToGobgp);
    const birdBefore = await bird.learnedCount();
    t0 = Date.now();
    await gobgp.announceMany(N, '100.128.0.0/24');
    const gobgpLocal = Date.now() - t0;
    const toBird = await waitCount(bird, birdBefore + N, 90_000);
    timings.push(`gobgp announceMany(${N}) /24s: in gobgpd's RIB after ${gobgpLocal} ms; bird has them ${gobgpLocal + toBird} ms after the call`);
  });

  it.skipIf(!process.env.TWILL_BGP_BENCH_1M)('announceMany(1000000) on bird and gobgp (TWILL_BGP_BENCH_1M=1)', async () => {
    const N = 1_000_000;
    await frr.stop(); // see above: gobgpd is much slower with two peers
    const gobgpBefore = await gobgp.learnedCount();
    let t0 = Date.now();
    await bird.announceMany(N, '101.0.0.0/32');
    const birdLocal = Date.now() - t0;
    const toGobgp = await waitCount(gobgp, gobgpBefore + N, 600_000);
    timings.push(`bird announceMany(${N}): in BIRD's table after ${birdLocal} ms; gobgp has them ${birdLocal + toGobgp} ms after the call`);

    const birdBefore = await bird.learnedCount();
    t0 = Date.now();
    await gobgp.announceMany(N, '102.0.0.0/32');
    const gobgpLocal = Date.now() - t0;
    timings.push(`gobgp announceMany(${N}): in gobgpd's RIB after ${gobgpLocal} ms`);
    const toBird = await waitCount(bird, birdBefore + N, 900_000).catch(async () => undefined);
    timings.push(toBird === undefined
      ? `gobgp announceMany(${N}): bird had ${(await bird.learnedCount()) - birdBefore} of them after ${Date.now() - t0} ms`
      : `gobgp announceMany(${N}): bird has them ${gobgpLocal + toBird} ms after the call`);
  }, 1_800_000);
});
