/**
 * Twill's own speaker (`twillctl bgp serve`) against the real daemons from Debian: BIRD 2,
 * gobgpd 3.10 and FRR 8.4, each in its own namespace, joined to a "twill" namespace by veth.
 *
 *   twill A (AS 65001, listens on [::]:179)
 *     ── eBGP IPv4 ──▶ bird (AS 65002)          Twill active, 2-octet ASNs
 *     ◀── eBGP IPv6 ── bird                     Twill passive
 *     ◀── eBGP IPv4 ── frr (AS 65003)           Twill passive
 *   twill B (AS 4200000001, active only)
 *     ── iBGP IPv4 and IPv6 ──▶ gobgp (AS 4200000001)   4-octet ASN, iBGP (gobgp passive: it dials slowly)
 *     ── with the wrong peer AS ──▶ bird        NOTIFICATION 2/2
 *   two more Twill speakers (AS 65005) ── TCP MD5 ──▶ bird: right key up, wrong key never up
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bgpDaemonsAvailable, startPeerDaemon, type LearnedRoute, type PeerDaemon, type PeerFamily } from '../helpers/bgp-peers.js';
import { groupId } from '../helpers/names.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { startTwillSpeaker, type TwillSpeaker } from '../helpers/twill-speaker.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const avail = bgpDaemonsAvailable();
const AS = { twillA: 65001, bird: 65002, frr: 65003, ibgp: 4200000001, twillC: 65005 };
const MD5 = 's3cret-key';
const IP = {
  twillBird: '198.18.1.1', bird: '198.18.1.2', twillBWrongAs: '198.18.1.3', twillCMd5: '198.18.1.4', twillCBadMd5: '198.18.1.5',
  twillBird6: 'fd00:198:18:1::1', bird6: 'fd00:198:18:1::2',
  twillGobgp: '198.18.2.1', gobgp: '198.18.2.2', twillGobgp6: 'fd00:198:18:2::1', gobgp6: 'fd00:198:18:2::2',
  twillFrr: '198.18.3.1', frr: '198.18.3.2',
};
const ACCEPT = ['--accept', '10.244.0.0/16,le=32', '--accept', 'fd00:10:244::/48,le=128'];

function waitLearned(peer: PeerDaemon, prefix: string, family: PeerFamily = 'ipv4-unicast', timeoutMs = 20_000): Promise<LearnedRoute> {
  return waitFor(async () => (await peer.learned(family)).find((r) => r.prefix === prefix), { timeoutMs, intervalMs: 200, what: `${peer.label} to learn ${prefix}` });
}

function waitDropped(peer: PeerDaemon, prefix: string, family: PeerFamily = 'ipv4-unicast', timeoutMs = 20_000): Promise<void> {
  return waitFor(async () => !(await peer.learned(family)).some((r) => r.prefix === prefix), { timeoutMs, intervalMs: 200, what: `${peer.label} to drop ${prefix}` }).then(() => undefined);
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
    await connectNetns(tw!, ng!, { a: { ifname: 'to-gobgp', cidr: `${IP.twillGobgp}/30` }, b: { ifname: 'to-twill', cidr: `${IP.gobgp}/30` } });
    await connectNetns(tw!, nf!, { a: { ifname: 'to-frr', cidr: `${IP.twillFrr}/30` }, b: { ifname: 'to-twill', cidr: `${IP.frr}/30` } });
    await tw!.netlink(async (nl) => {
      for (const a of [IP.twillBWrongAs, IP.twillCMd5, IP.twillCBadMd5]) await nl.addAddress('to-bird', `${a}/29`);
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
          { address: IP.twillCMd5, asn: AS.twillC, passive: true, md5: MD5 },
          { address: IP.twillCBadMd5, asn: AS.twillC, passive: true, md5: MD5 },
        ],
        announce: [{ prefix: '10.244.2.0/24' }, { prefix: 'fd00:10:244:2::/64' }],
      }),
      startPeerDaemon({
        kind: 'gobgp', netns: ng!, asn: AS.ibgp, routerId: IP.gobgp, label: 'gobgp',
        neighbors: [{ address: IP.twillGobgp, asn: AS.ibgp, passive: true }, { address: IP.twillGobgp6, asn: AS.ibgp, passive: true }],
        announce: [{ prefix: '10.244.4.0/24', communities: ['65000:42'], largeCommunities: ['4200000001:1:2'] }, { prefix: 'fd00:10:244:4::/64' }],
      }),
      startPeerDaemon({
        kind: 'frr', netns: nf!, asn: AS.frr, routerId: IP.frr, label: 'frr',
        neighbors: [{ address: IP.twillFrr, asn: AS.twillA }],
        announce: [{ prefix: '10.244.3.0/24' }],
      }),
    ]);
    [twillA, twillB] = await Promise.all([
      startTwillSpeaker(tw!, [
        '--asn', String(AS.twillA), '--router-id', IP.twillBird, '--listen', '[::]:179', ...ACCEPT,
        '--peer', `${IP.bird},asn=${AS.bird},local=${IP.twillBird},hold=9`,
        '--peer', `${IP.bird6},asn=${AS.bird},passive,hold=9`,
        '--peer', `${IP.frr},asn=${AS.frr},passive,hold=9`,
        '--announce', '10.244.1.0/24', '--announce', 'fd00:10:244:1::/64',
      ], 'twill-a'),
      startTwillSpeaker(tw!, [
        '--asn', String(AS.ibgp), '--router-id', IP.twillGobgp, ...ACCEPT,
        '--peer', `${IP.gobgp},asn=${AS.ibgp},local=${IP.twillGobgp},hold=9`,
        '--peer', `${IP.gobgp6},asn=${AS.ibgp},local=${IP.twillGobgp6},hold=9`,
        '--peer', `${IP.bird},asn=65099,local=${IP.twillBWrongAs},hold=9`,
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

  it('refuses a peer whose AS is not the configured one with NOTIFICATION 2/2', async () => {
    const line = await twillB.waitFor((l) => l.event === 'session' && l.peer === IP.bird && /says it is AS 65002, configured AS 65099/.test(String(l.reason)), 'bad peer AS');
    expect(line.state).not.toBe('established');
    expect(twillB.lines.some((l) => l.peer === IP.bird && l.state === 'established')).toBe(false);
    expect(await bird.sessionState(IP.twillBWrongAs)).not.toBe('established');
  });

  it('brings up a TCP MD5 session with BIRD with the right key, and never with a wrong one', async () => {
    // One speaker holds one session per peer address, so each key gets a speaker of its own.
    const good = await startTwillSpeaker(twillNs, ['--asn', String(AS.twillC), '--router-id', IP.twillCMd5, ...ACCEPT, '--peer', `${IP.bird},asn=${AS.bird},local=${IP.twillCMd5},md5=${MD5},hold=9`], 'twill-md5');
    const bad = await startTwillSpeaker(twillNs, ['--asn', String(AS.twillC), '--router-id', IP.twillCBadMd5, '--peer', `${IP.bird},asn=${AS.bird},local=${IP.twillCBadMd5},md5=wrong-key,hold=9`], 'twill-md5-bad');
    await good.waitEstablished(IP.bird);
    await good.waitRoute('10.244.2.0/24', IP.bird);
    await bird.waitEstablished(IP.twillCMd5);
    // A wrong key drops the SYN silently (RFC 2385 §2.0): the connect times out, again and again.
    await bad.waitFor((l) => l.event === 'warning' && /ETIMEDOUT/.test(String(l.message)), 'connect timeout with the wrong key', 15_000);
    expect(bad.state(IP.bird)).not.toBe('established');
    expect(bad.lines.some((l) => l.state === 'opensent' || l.state === 'established')).toBe(false);
    expect(await bird.sessionState(IP.twillCBadMd5)).not.toBe('established');
    await Promise.all([good.stop(), bad.stop()]);
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
