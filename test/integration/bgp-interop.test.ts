/**
 * Twill's own speaker (`twillctl bgp serve`) against the real daemons from Debian: BIRD 2,
 * gobgpd 3.10 and FRR 8.4, each in its own namespace, joined to a "twill" namespace by veth.
 * Every session, and who opens its TCP connection ("──▶" points away from the dialling side):
 *
 *   twill A (AS 65001, listens on [::]:179)
 *     ── eBGP IPv4 ──▶ bird (AS 65002)          Twill active, 2-octet ASNs; BIRD's ROUTE-REFRESH answered
 *     ◀── eBGP IPv6 ── bird                     Twill passive
 *     ◀── eBGP IPv4 ── frr (AS 65003)           Twill passive; FRR records Twill's End-of-RIB
 *     ◀── eBGP IPv4 ── gobgp (AS 4200000001)    Twill passive, gobgp dials (its first try comes 5-10 s after it starts)
 *   twill B (AS 4200000001, active only: no listener)
 *     ── iBGP IPv4 and IPv6 ──▶ gobgp           4-octet ASN, iBGP (gobgp passive: it dials slowly); gobgp records End-of-RIB
 *     ── eBGP IPv4 ──▶ frr (passive there)      Twill active, 4- to 2-octet ASN; FRR's ROUTE-REFRESH answered
 *     ── with the wrong peer AS ──▶ bird        NOTIFICATION 2/2
 *   two more Twill speakers (AS 65005) ── TCP MD5 ──▶ bird: right key up, wrong key never up
 *   twill C (AS 65006) ◀── both dial at once ──▶ bird-col (AS 65002), in two namespaces of their own:
 *     connection collision (RFC 4271 §6.8), Cease/7 on the connection of the lower BGP identifier
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bgpDaemonsAvailable, startPeerDaemon, type LearnedRoute, type NeighborStatus, type PeerDaemon, type PeerFamily } from '../helpers/bgp-peers.js';
import { commandAvailable } from '../helpers/exec.js';
import { groupId } from '../helpers/names.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { startTwillSpeaker, type TwillSpeaker } from '../helpers/twill-speaker.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { sleep, waitFor } from '../helpers/wait.js';

const avail = bgpDaemonsAvailable();
const AS = { twillA: 65001, bird: 65002, frr: 65003, ibgp: 4200000001, twillMd5: 65005, twillCol: 65006 };
const MD5 = 's3cret-key';
const IP = {
  twillBird: '198.18.1.1', bird: '198.18.1.2', twillBWrongAs: '198.18.1.3', twillMd5: '198.18.1.4', twillBadMd5: '198.18.1.5',
  twillBird6: 'fd00:198:18:1::1', bird6: 'fd00:198:18:1::2',
  twillGobgp: '198.18.2.1', gobgp: '198.18.2.2', twillAGobgp: '198.18.2.3', twillGobgp6: 'fd00:198:18:2::1', gobgp6: 'fd00:198:18:2::2',
  twillFrr: '198.18.3.1', frr: '198.18.3.2', twillBFrr: '198.18.3.3',
  twillCol: '198.18.4.1', birdCol: '198.18.4.2',
};
const ACCEPT = ['--accept', '10.244.0.0/16,le=32', '--accept', 'fd00:10:244::/48,le=128'];

function waitLearned(peer: PeerDaemon, prefix: string, family: PeerFamily = 'ipv4-unicast', timeoutMs = 20_000): Promise<LearnedRoute> {
  return waitFor(async () => (await peer.learned(family)).find((r) => r.prefix === prefix), { timeoutMs, intervalMs: 200, what: `${peer.label} to learn ${prefix}` });
}

function waitDropped(peer: PeerDaemon, prefix: string, family: PeerFamily = 'ipv4-unicast', timeoutMs = 20_000): Promise<void> {
  return waitFor(async () => !(await peer.learned(family)).some((r) => r.prefix === prefix), { timeoutMs, intervalMs: 200, what: `${peer.label} to drop ${prefix}` }).then(() => undefined);
}

/** An ESTAB TCP connection of `ns` with `local` (IPv4) as its local address, from `ss`. */
interface TcpConnection { readonly localPort: number; readonly peer: string; readonly peerPort: number }

async function connections(ns: TestNetns, local: string): Promise<TcpConnection[]> {
  const out = await ns.exec('ss', ['-Htn', 'state', 'established', 'src', local]);
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => {
    // "0 0 198.18.4.1:179 198.18.4.2:41167" (no State column once a state is asked for)
    // "[::ffff:198.18.2.2]:41167" on a dual-stack listener such as Twill A's [::]:179.
    const [localEnd, peerEnd] = l.trim().split(/\s+/).slice(-2) as [string, string];
    const at = peerEnd.lastIndexOf(':');
    const peer = peerEnd.slice(0, at).replace(/^\[(?:::ffff:)?|\]$/g, '');
    return { localPort: Number(localEnd.slice(localEnd.lastIndexOf(':') + 1)), peer, peerPort: Number(peerEnd.slice(at + 1)) };
  });
}

/** Waits until the daemon's status for `neighbor` satisfies `pred`; returns it. */
function waitStatus(peer: PeerDaemon, neighbor: string, pred: (s: NeighborStatus) => boolean, what: string, timeoutMs = 10_000): Promise<NeighborStatus> {
  return waitFor(async () => {
    const s = await peer.neighborStatus(neighbor);
    return pred(s) ? s : undefined;
  }, { timeoutMs, intervalMs: 200, what: `${peer.label}: ${what}` });
}

describe.skipIf(!isRoot || !avail.gobgp || !avail.bird || !avail.frr)('Twill\'s BGP speaker against BIRD, gobgpd and FRR', () => {
  useCleanup();
  let twillNs: TestNetns;
  let bird: PeerDaemon;
  let gobgp: PeerDaemon;
  let frr: PeerDaemon;
  let twillA: TwillSpeaker;
  let twillB: TwillSpeaker;

  beforeAll(async () => {
    const group = groupId();
    const [tw, nb, ng, nf] = await Promise.all(['twill', 'bird', 'gobgp', 'frr'].map((l) => createTestNetns(l, { group })));
    twillNs = tw!;
    for (const ns of [tw!, nb!, ng!, nf!]) {
      ns.writeSysctl('net/ipv6/conf/all/accept_dad', 0);
      ns.writeSysctl('net/ipv6/conf/default/accept_dad', 0);
    }
    await connectNetns(tw!, nb!, { a: { ifname: 'to-bird', cidr: `${IP.twillBird}/29` }, b: { ifname: 'to-twill', cidr: `${IP.bird}/29` } });
    await connectNetns(tw!, ng!, { a: { ifname: 'to-gobgp', cidr: `${IP.twillGobgp}/29` }, b: { ifname: 'to-twill', cidr: `${IP.gobgp}/29` } });
    await connectNetns(tw!, nf!, { a: { ifname: 'to-frr', cidr: `${IP.twillFrr}/29` }, b: { ifname: 'to-twill', cidr: `${IP.frr}/29` } });
    await tw!.netlink(async (nl) => {
      for (const a of [IP.twillBWrongAs, IP.twillMd5, IP.twillBadMd5]) await nl.addAddress('to-bird', `${a}/29`);
      await nl.addAddress('to-gobgp', `${IP.twillAGobgp}/29`);
      await nl.addAddress('to-frr', `${IP.twillBFrr}/29`);
      await nl.addAddress('to-bird', `${IP.twillBird6}/64`);
      await nl.addAddress('to-gobgp', `${IP.twillGobgp6}/64`);
    });
    await nb!.netlink((nl) => nl.addAddress('to-twill', `${IP.bird6}/64`));
    await ng!.netlink((nl) => nl.addAddress('to-twill', `${IP.gobgp6}/64`));

    [bird, gobgp, frr] = await Promise.all([
      startPeerDaemon({
        kind: 'bird', netns: nb!, asn: AS.bird, routerId: IP.bird, label: 'bird',
        neighbors: [
          { address: IP.twillBird, asn: AS.twillA, passive: true },
          { address: IP.twillBird6, asn: AS.twillA },
          // Twill B says it is AS 4200000001 here, and is told BIRD is AS 65099: it must refuse.
          { address: IP.twillBWrongAs, asn: AS.ibgp, passive: true },
          { address: IP.twillMd5, asn: AS.twillMd5, passive: true, md5: MD5 },
          { address: IP.twillBadMd5, asn: AS.twillMd5, passive: true, md5: MD5 },
        ],
        announce: [{ prefix: '10.244.2.0/24' }, { prefix: 'fd00:10:244:2::/64' }],
      }),
      startPeerDaemon({
        kind: 'gobgp', netns: ng!, asn: AS.ibgp, routerId: IP.gobgp, label: 'gobgp',
        neighbors: [
          { address: IP.twillGobgp, asn: AS.ibgp, passive: true }, { address: IP.twillGobgp6, asn: AS.ibgp, passive: true },
          // gobgp dials this one: Twill A is passive towards it.
          { address: IP.twillAGobgp, asn: AS.twillA },
        ],
        announce: [{ prefix: '10.244.4.0/24', communities: ['65000:42'], largeCommunities: ['4200000001:1:2'] }, { prefix: 'fd00:10:244:4::/64' }],
      }),
      startPeerDaemon({
        kind: 'frr', netns: nf!, asn: AS.frr, routerId: IP.frr, label: 'frr',
        neighbors: [
          { address: IP.twillFrr, asn: AS.twillA },
          // FRR only waits here: the session can only be Twill B's connection.
          { address: IP.twillBFrr, asn: AS.ibgp, passive: true },
        ],
        announce: [{ prefix: '10.244.3.0/24' }],
      }),
    ]);
    [twillA, twillB] = await Promise.all([
      startTwillSpeaker(tw!, [
        '--asn', String(AS.twillA), '--router-id', IP.twillBird, '--listen', '[::]:179', ...ACCEPT,
        '--peer', `${IP.bird},asn=${AS.bird},local=${IP.twillBird},hold=9`,
        '--peer', `${IP.bird6},asn=${AS.bird},passive,hold=9`,
        '--peer', `${IP.frr},asn=${AS.frr},passive,hold=9`,
        '--peer', `${IP.gobgp},asn=${AS.ibgp},passive,hold=9`,
        '--announce', '10.244.1.0/24', '--announce', 'fd00:10:244:1::/64',
      ], 'twill-a'),
      startTwillSpeaker(tw!, [
        '--asn', String(AS.ibgp), '--router-id', IP.twillGobgp, ...ACCEPT,
        '--peer', `${IP.gobgp},asn=${AS.ibgp},local=${IP.twillGobgp},hold=9`,
        '--peer', `${IP.gobgp6},asn=${AS.ibgp},local=${IP.twillGobgp6},hold=9`,
        '--peer', `${IP.bird},asn=65099,local=${IP.twillBWrongAs},hold=9`,
        '--peer', `${IP.frr},asn=${AS.frr},local=${IP.twillBFrr},hold=9`,
        '--announce', '10.244.5.0/24', '--announce', 'fd00:10:244:5::/64',
      ], 'twill-b'),
    ]);
  });

  afterAll(async () => {
    await Promise.all([twillA?.stop(), twillB?.stop()]);
  });

  it('reaches Established with each daemon: Twill active and passive, IPv4 and IPv6, eBGP and iBGP, 2- and 4-octet ASNs', async () => {
    const sessions = await Promise.all([
      twillA.waitEstablished(IP.bird), twillA.waitEstablished(IP.bird6), twillA.waitEstablished(IP.frr),
      twillB.waitEstablished(IP.gobgp), twillB.waitEstablished(IP.gobgp6),
    ]);
    expect(sessions.map((s) => (s.negotiated as { peerAsn: number }).peerAsn)).toEqual([AS.bird, AS.bird, AS.frr, AS.ibgp, AS.ibgp]);
    expect(sessions[3]!.negotiated).toMatchObject({ fourOctetAsn: true, families: ['ipv4-unicast'] });
    expect(sessions[4]!.negotiated).toMatchObject({ families: ['ipv6-unicast'] });
    await Promise.all([
      bird.waitEstablished(IP.twillBird), bird.waitEstablished(IP.twillBird6), frr.waitEstablished(IP.twillFrr),
      gobgp.waitEstablished(IP.twillGobgp), gobgp.waitEstablished(IP.twillGobgp6),
    ]);
  });

  it('comes up on Twill\'s own connection when FRR is passive (Twill active, 4-octet to 2-octet eBGP), routes both ways', async () => {
    const up = await twillB.waitEstablished(IP.frr);
    expect(up.negotiated).toMatchObject({ peerAsn: AS.frr, fourOctetAsn: true, families: ['ipv4-unicast'] });
    await frr.waitEstablished(IP.twillBFrr);
    // Twill B has no listener and FRR never dials this neighbor; the one connection is Twill's, to port 179.
    const conns = await connections(twillNs, IP.twillBFrr);
    expect(conns).toMatchObject([{ peer: IP.frr, peerPort: 179 }]);
    expect(conns[0]!.localPort).not.toBe(179);
    expect(await waitLearned(frr, '10.244.5.0/24')).toMatchObject({ nextHop: IP.twillBFrr, asPath: [AS.ibgp] });
    expect(await twillB.waitRoute('10.244.3.0/24', IP.frr)).toMatchObject({ nextHop: IP.frr, asPath: [AS.frr] });
  });

  it('announces to each daemon what the daemon shows in its RIB (eBGP: own AS, next hop self; iBGP: LOCAL_PREF, no prepend)', async () => {
    expect(await waitLearned(bird, '10.244.1.0/24')).toMatchObject({ nextHop: IP.twillBird, asPath: [AS.twillA], from: IP.twillBird });
    expect(await waitLearned(bird, 'fd00:10:244:1::/64', 'ipv6-unicast')).toMatchObject({ nextHop: IP.twillBird6, asPath: [AS.twillA] });
    expect(await waitLearned(frr, '10.244.1.0/24')).toMatchObject({ nextHop: IP.twillFrr, asPath: [AS.twillA] });
    expect(await waitLearned(gobgp, '10.244.5.0/24')).toMatchObject({ nextHop: IP.twillGobgp, asPath: [], localPref: 100 });
    expect(await waitLearned(gobgp, 'fd00:10:244:5::/64', 'ipv6-unicast')).toMatchObject({ nextHop: IP.twillGobgp6, asPath: [] });
  });

  it('learns what each daemon announces, with its attributes, and FRR\'s End-of-RIB', async () => {
    expect(await twillA.waitRoute('10.244.2.0/24', IP.bird)).toMatchObject({ nextHop: IP.bird, asPath: [AS.bird] });
    expect(await twillA.waitRoute('fd00:10:244:2::/64', IP.bird6)).toMatchObject({ family: 'ipv6-unicast', nextHop: IP.bird6 });
    expect(await twillA.waitRoute('10.244.3.0/24', IP.frr)).toMatchObject({ nextHop: IP.frr, asPath: [AS.frr] });
    expect(await twillB.waitRoute('10.244.4.0/24', IP.gobgp)).toMatchObject({
      nextHop: IP.gobgp, asPath: [], localPref: 100, communities: ['65000:42'], largeCommunities: ['4200000001:1:2'],
    });
    expect(await twillB.waitRoute('fd00:10:244:4::/64', IP.gobgp6)).toMatchObject({ nextHop: IP.gobgp6 });
    // BIRD and gobgpd send End-of-RIB only on sessions with graceful restart negotiated (the harness
    // turns it off on their side); FRR always does.
    await twillA.waitFor((l) => l.event === 'end-of-rib' && l.peer === IP.frr && l.family === 'ipv4-unicast', `End-of-RIB from ${IP.frr}`);
  });

  it('passes an eBGP route on to another eBGP peer with its AS path extended (BIRD → Twill → FRR)', async () => {
    expect(await waitLearned(frr, '10.244.2.0/24')).toMatchObject({ nextHop: IP.twillFrr, asPath: [AS.twillA, AS.bird] });
    // …but never back to where it came from.
    expect((await bird.learned()).some((r) => r.prefix === '10.244.2.0/24' && r.from === IP.twillBird)).toBe(false);
  });

  it('follows withdrawals both ways', async () => {
    await bird.withdraw('10.244.2.0/24');
    await twillA.waitNoRoute('10.244.2.0/24');
    await waitDropped(frr, '10.244.2.0/24');
    await gobgp.withdraw('fd00:10:244:4::/64');
    await twillB.waitNoRoute('fd00:10:244:4::/64');
    await bird.announce('10.244.2.0/24');
    await twillA.waitRoute('10.244.2.0/24', IP.bird);
  });

  it('sends End-of-RIB after its initial table, and FRR and gobgpd record it (Twill active and passive, IPv4 and IPv6)', async () => {
    // FRR and gobgpd keep the flag with graceful restart off; BIRD shows nothing of it.
    for (const [peer, neighbor, family] of [
      [frr, IP.twillFrr, 'ipv4-unicast'], [frr, IP.twillBFrr, 'ipv4-unicast'],
      [gobgp, IP.twillGobgp, 'ipv4-unicast'], [gobgp, IP.twillGobgp6, 'ipv6-unicast'],
    ] as const) {
      const status = await waitStatus(peer, neighbor, (st) => st.endOfRibReceived?.includes(family) === true, `End-of-RIB (${family}) from ${neighbor}`);
      // The table came first: at least one UPDATE with routes, then the End-of-RIB.
      expect(status.messages!.received.updates).toBeGreaterThanOrEqual(2);
    }
  });

  it('refuses a peer whose AS is not the configured one with NOTIFICATION 2/2', async () => {
    const line = await twillB.waitFor((l) => l.event === 'session' && l.peer === IP.bird && /says it is AS 65002, configured AS 65099/.test(String(l.reason)), 'bad peer AS');
    expect(line.state).not.toBe('established');
    expect(twillB.lines.some((l) => l.peer === IP.bird && l.state === 'established')).toBe(false);
    expect(await bird.sessionState(IP.twillBWrongAs)).not.toBe('established');
  });

  it('brings up a TCP MD5 session with BIRD with the right key, and never with a wrong one', async () => {
    // One speaker holds one session per peer address, so each key gets a speaker of its own.
    const good = await startTwillSpeaker(twillNs, ['--asn', String(AS.twillMd5), '--router-id', IP.twillMd5, ...ACCEPT, '--peer', `${IP.bird},asn=${AS.bird},local=${IP.twillMd5},md5=${MD5},hold=9`], 'twill-md5');
    const bad = await startTwillSpeaker(twillNs, ['--asn', String(AS.twillMd5), '--router-id', IP.twillBadMd5, '--peer', `${IP.bird},asn=${AS.bird},local=${IP.twillBadMd5},md5=wrong-key,hold=9`], 'twill-md5-bad');
    await good.waitEstablished(IP.bird);
    await good.waitRoute('10.244.2.0/24', IP.bird);
    await bird.waitEstablished(IP.twillMd5);
    // A wrong key drops the SYN silently (RFC 2385 §2.0): the connect times out, again and again.
    await bad.waitFor((l) => l.event === 'warning' && /ETIMEDOUT/.test(String(l.message)), 'connect timeout with the wrong key', 15_000);
    expect(bad.state(IP.bird)).not.toBe('established');
    expect(bad.lines.some((l) => l.state === 'opensent' || l.state === 'established')).toBe(false);
    expect(await bird.sessionState(IP.twillBadMd5)).not.toBe('established');
    await Promise.all([good.stop(), bad.stop()]);
  });

  it('accepts gobgpd\'s connection when Twill is passive, routes both ways, and gobgpd records its End-of-RIB', async () => {
    // gobgpd waits 5-10 s before its first connection (its minimum connect retry is 5 s): the tests
    // before this one have used most of that time.
    const up = await twillA.waitEstablished(IP.gobgp, 30_000);
    expect(up.negotiated).toMatchObject({ peerAsn: AS.ibgp, fourOctetAsn: true, families: ['ipv4-unicast'] });
    await gobgp.waitEstablished(IP.twillAGobgp);
    // Passive: Twill never dialled, and the connection is gobgp's, to Twill's port 179.
    expect(twillA.lines.some((l) => l.event === 'session' && l.peer === IP.gobgp && l.state === 'connect')).toBe(false);
    expect(await connections(twillNs, IP.twillAGobgp)).toEqual([{ localPort: 179, peer: IP.gobgp, peerPort: expect.any(Number) as number }]);
    expect(await waitLearned(gobgp, '10.244.1.0/24')).toMatchObject({ nextHop: IP.twillAGobgp, asPath: [AS.twillA], from: IP.twillAGobgp });
    expect(await twillA.waitRoute('10.244.4.0/24', IP.gobgp)).toMatchObject({ nextHop: IP.gobgp, asPath: [AS.ibgp], communities: ['65000:42'] });
    await waitStatus(gobgp, IP.twillAGobgp, (st) => st.endOfRibReceived?.includes('ipv4-unicast') === true, 'End-of-RIB from Twill A');
  });

  it('answers a ROUTE-REFRESH from FRR and from BIRD by sending its routes again, and the sessions stay up', async () => {
    // What each daemon should hold from Twill before asking (FRR: from B; BIRD: from A, which by now
    // includes gobgp's route), so that nothing else is still on its way when the counters are read.
    await waitFor(async () => (await frr.learned()).some((r) => r.prefix === '10.244.4.0/24' && r.from === IP.twillBFrr), { timeoutMs: 10_000, what: 'FRR to learn 10.244.4.0/24 from Twill B' });
    await waitFor(async () => (await bird.learned()).some((r) => r.prefix === '10.244.4.0/24' && r.from === IP.twillBird), { timeoutMs: 10_000, what: 'BIRD to learn 10.244.4.0/24 from Twill A' });
    const fromA = (await bird.learned()).filter((r) => r.from === IP.twillBird).length;
    const seenB = twillB.lines.length;
    const seenA = twillA.lines.length;
    const frrBefore = await frr.neighborStatus(IP.twillBFrr);
    const birdBefore = await bird.neighborStatus(IP.twillBird);

    // FRR without soft-reconfiguration keeps no copy of what it received: "soft in" asks Twill.
    // Twill answers with its routes and no End-of-RIB (that marks only the initial table; FRR
    // logs each one it receives).
    const eors = (): number => frr.output().split(`rcvd End-of-RIB for IPv4 Unicast from ${IP.twillBFrr} `).length - 1;
    const eorsBefore = eors();
    expect(eorsBefore).toBeGreaterThanOrEqual(1);
    await frr.requestRouteRefresh(IP.twillBFrr);
    // At least one UPDATE with routes.
    const frrAfter = await waitStatus(frr, IP.twillBFrr, (st) => st.messages!.received.updates >= frrBefore.messages!.received.updates + 1,
      'an UPDATE from Twill B after FRR\'s ROUTE-REFRESH');
    expect(frrAfter.messages!.sent.routeRefresh).toBe(frrBefore.messages!.sent.routeRefresh + 1);
    expect(frrAfter).toMatchObject({ state: 'established', connections: frrBefore.connections });

    // BIRD (reload in) counts every route announcement it receives, repeats included.
    await bird.requestRouteRefresh(IP.twillBird);
    const birdAfter = await waitStatus(bird, IP.twillBird, (st) => st.routeUpdatesReceived! >= birdBefore.routeUpdatesReceived! + fromA,
      `${fromA} route announcements again after its ROUTE-REFRESH`);
    expect(birdAfter).toMatchObject({ state: 'established', upSince: birdBefore.upSince });

    expect(twillB.lines.slice(seenB).filter((l) => l.event === 'session' && l.peer === IP.frr)).toEqual([]);
    expect(twillA.lines.slice(seenA).filter((l) => l.event === 'session' && l.peer === IP.bird)).toEqual([]);
    expect((await frr.learned()).filter((r) => r.from === IP.twillBFrr).map((r) => r.prefix).sort()).toEqual(['10.244.4.0/24', '10.244.5.0/24']);
    expect(eors()).toBe(eorsBefore);
  });

  it.skipIf(!commandAvailable('nft') || !commandAvailable('ss'))('resolves a connection collision with BIRD (both active): one session, on the higher BGP identifier\'s connection, Cease/7 on the other', async () => {
    // Twill C and a BIRD of its own, alone on a link, both dialling. nftables in Twill's namespace
    // holds every BGP message (anything longer than a bare TCP segment) until both connections
    // exist, then lets them through one direction and one connection at a time, so the order of
    // events is fixed:
    //  1. BIRD's OPEN reaches Twill on the connection BIRD dialled (Twill: OpenConfirm), then on
    //     the one Twill dialled: a true collision (RFC 4271 §6.8) before anything is Established.
    //     BIRD's identifier is the higher one, so Twill must close its own connection, with Cease/7.
    //  2. Twill's messages on that loser reach BIRD (OPEN, NOTIFICATION): BIRD logs the Cease/7.
    //  3. The rest: the session comes up on the connection BIRD dialled.
    // (Were BIRD's OPENs let in the other way round, Twill would send a KEEPALIVE on the connection
    // it later closes, and BIRD, reading it with the OPEN in one segment, would reach Established
    // on it just before the Cease/7: the race §6.8 leaves open, which only makes both retry.)
    const group = groupId();
    const [ctw, cbird] = await Promise.all(['col-twill', 'col-bird'].map((l) => createTestNetns(l, { group })));
    await connectNetns(ctw!, cbird!, { a: { ifname: 'to-bird', cidr: `${IP.twillCol}/30` }, b: { ifname: 'to-twill', cidr: `${IP.birdCol}/30` } });
    // SYNs and ACKs are at most 60 bytes with their TCP options; a segment with a BGP message is longer.
    const hold = (chain: string, hook: string, match: string): string =>
      `chain ${chain} { type filter hook ${hook} priority 0; ${match} ip length > 64 drop; }`;
    await ctw!.exec('nft', ['-f', '-'], {
      input: `table inet twt_hold {
        ${hold('in_bird_dialled', 'input', `ip daddr ${IP.twillCol} tcp dport 179`)}
        ${hold('in_twill_dialled', 'input', `ip daddr ${IP.twillCol} tcp sport 179`)}
        ${hold('out_twill_dialled', 'output', `ip saddr ${IP.twillCol} tcp dport 179`)}
        ${hold('out_bird_dialled', 'output', `ip saddr ${IP.twillCol} tcp sport 179`)}
      }\n`,
    });
    const release = (chain: string): Promise<string> => ctw!.exec('nft', ['flush', 'chain', 'inet', 'twt_hold', chain]);
    const birdCol = await startPeerDaemon({
      kind: 'bird', netns: cbird!, asn: AS.bird, routerId: IP.birdCol, label: 'bird-col',
      neighbors: [{ address: IP.twillCol, asn: AS.twillCol }], announce: [{ prefix: '10.244.2.0/24' }],
    });
    const twillC = await startTwillSpeaker(ctw!, [
      '--asn', String(AS.twillCol), '--router-id', IP.twillCol, '--listen', `${IP.twillCol}:179`, ...ACCEPT,
      '--peer', `${IP.birdCol},asn=${AS.bird},local=${IP.twillCol},hold=9`, '--announce', '10.244.6.0/24',
    ], 'twill-c');
    const birdDialled = [{ localPort: 179, peer: IP.birdCol, peerPort: expect.any(Number) as number }];

    // Both TCP connections up (BIRD retries every 1-2 s), every OPEN held.
    await waitFor(async () => (await connections(ctw!, IP.twillCol)).length === 2, { timeoutMs: 15_000, intervalMs: 50, what: 'both connections' });
    expect((await connections(ctw!, IP.twillCol)).map((c) => (c.localPort === 179 ? 'bird dialled' : 'twill dialled')).sort()).toEqual(['bird dialled', 'twill dialled']);
    // 1.
    await release('in_bird_dialled');
    await twillC.waitFor((l) => l.event === 'session' && l.state === 'openconfirm', 'OPEN on the connection BIRD dialled', 10_000);
    await release('in_twill_dialled');
    await waitFor(async () => (await connections(ctw!, IP.twillCol)).length === 1, { timeoutMs: 10_000, intervalMs: 50, what: 'Twill to close one connection' });
    expect(await connections(ctw!, IP.twillCol)).toEqual(birdDialled);
    expect(twillC.state(IP.birdCol)).toBe('openconfirm');
    // `twillctl bgp serve` says so, though the session's state did not change.
    expect(twillC.lines.filter((l) => l.event === 'collision')).toEqual([
      expect.objectContaining({ peer: IP.birdCol, closed: 'outgoing', notification: { code: 6, subcode: 7 } }),
    ]);
    // 2. (retransmitted by TCP: up to a few seconds of backoff)
    await release('out_twill_dialled');
    const received = `n_${IP.twillCol.replaceAll('.', '_')}: Received: Connection collision resolution`;
    await waitFor(() => birdCol.output().includes(received), { timeoutMs: 15_000, what: 'BIRD to receive Cease/7' });
    expect(await birdCol.sessionState(IP.twillCol)).not.toBe('established');
    // 3.
    await ctw!.exec('nft', ['delete', 'table', 'inet', 'twt_hold']);
    await twillC.waitEstablished(IP.birdCol);
    await birdCol.waitEstablished(IP.twillCol);
    await twillC.waitRoute('10.244.2.0/24', IP.birdCol);
    await waitLearned(birdCol, '10.244.6.0/24');
    // Stays up: a keepalive interval (3 s) later, still that one connection and one session on each
    // side, never dropped. (Hold 9 s: in OpenConfirm the negotiated hold time already runs while the
    // held messages wait for TCP's retransmission backoff.)
    await sleep(3500);
    expect(await connections(ctw!, IP.twillCol)).toEqual(birdDialled);
    expect(await birdCol.sessionState(IP.twillCol)).toBe('established');
    expect(twillC.state(IP.birdCol)).toBe('established');
    const sessionLines = twillC.lines.filter((l) => l.event === 'session');
    expect(sessionLines.filter((l) => l.state === 'established')).toHaveLength(1);
    expect(sessionLines.filter((l) => l.from === 'established')).toEqual([]);
    await twillC.stop();
  });

  it('drops a frozen peer when the hold timer expires and withdraws its routes; it comes back when the peer does', async () => {
    await frr.pause();
    const t0 = Date.now();
    const down = await twillA.waitFor((l) => l.event === 'session' && l.peer === IP.frr && l.from === 'established', 'FRR session down', 20_000);
    expect(down.reason).toMatch(/hold timer expired/);
    expect(Date.now() - t0).toBeGreaterThan(5000);
    await twillA.waitNoRoute('10.244.3.0/24');
    await frr.resume();
    await twillA.waitEstablished(IP.frr, 40_000);
    await twillA.waitRoute('10.244.3.0/24', IP.frr, 20_000);
  });

  it('withdraws a killed peer\'s routes at once and re-learns them after its restart', async () => {
    await bird.kill();
    const down = await twillA.waitFor((l) => l.event === 'session' && l.peer === IP.bird && l.from === 'established', 'BIRD session down');
    expect(down.reason).toMatch(/closed|failed|NOTIFICATION/);
    await twillA.waitNoRoute('10.244.2.0/24');
    await bird.restart();
    await twillA.waitEstablished(IP.bird, 40_000);
    await twillA.waitRoute('10.244.2.0/24', IP.bird);
    await waitLearned(bird, '10.244.1.0/24');
  });
});
