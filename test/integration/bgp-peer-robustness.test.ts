/**
 * What a peer, or anyone on a peer's host, can do to Twill's speaker (`twillctl bgp serve`),
 * against real daemons, each in its own namespace joined to Twill's by veth:
 *
 *   twill (AS 65001, listens on 198.18.9.1:179)
 *     ◀── eBGP ── frr (AS 65003, graceful restart on)   a bare TCP connection from FRR's host; FRR killed and restarted
 *     ── iBGP ──▶ gobgp (AS 65001, passive)             next hops Twill must ignore; more prefixes than the default max-prefix
 *
 * The unit tests (bgp-speaker-*.test.ts, bgp-session-fuzz.test.ts) cover the rules one by one;
 * these show them from the outside, as an operator sees them in the daemons and in Twill's lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bgpDaemonsAvailable, startPeerDaemon, type PeerDaemon } from '../helpers/bgp-peers.js';
import { groupId } from '../helpers/names.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { connectPeer } from '../helpers/tcp-peer.js';
import { startTwillSpeaker, type SpeakerLine, type TwillSpeaker } from '../helpers/twill-speaker.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const avail = bgpDaemonsAvailable();
const AS = { twill: 65001, frr: 65003 };
const IP = { twillFrr: '198.18.9.1', frr: '198.18.9.2', twillGobgp: '198.18.10.1', gobgp: '198.18.10.2' };

const downs = (twill: TwillSpeaker, peer: string): SpeakerLine[] => twill.lines.filter((l) => l.event === 'session' && l.peer === peer && l.from === 'established');
const withdrawals = (twill: TwillSpeaker, prefix: string): SpeakerLine[] => twill.lines.filter((l) => l.event === 'withdrawn' && l.prefix === prefix);

describe.skipIf(!isRoot || !avail.gobgp || !avail.frr)('Twill\'s BGP speaker and what its peers can do to it', () => {
  useCleanup();
  let frrNs: TestNetns;
  let frr: PeerDaemon;
  let gobgp: PeerDaemon;
  let twill: TwillSpeaker;

  beforeAll(async () => {
    const group = groupId();
    const [tw, nf, ng] = await Promise.all(['twill', 'frr', 'gobgp'].map((l) => createTestNetns(l, { group })));
    frrNs = nf!;
    await connectNetns(tw!, nf!, { a: { ifname: 'to-frr', cidr: `${IP.twillFrr}/29` }, b: { ifname: 'to-twill', cidr: `${IP.frr}/29` } });
    await connectNetns(tw!, ng!, { a: { ifname: 'to-gobgp', cidr: `${IP.twillGobgp}/29` }, b: { ifname: 'to-twill', cidr: `${IP.gobgp}/29` } });
    [frr, gobgp] = await Promise.all([
      startPeerDaemon({
        kind: 'frr', netns: nf!, asn: AS.frr, routerId: IP.frr, label: 'frr',
        neighbors: [{ address: IP.twillFrr, asn: AS.twill, gracefulRestart: true }],
        announce: [{ prefix: '10.244.3.0/24' }],
      }),
      startPeerDaemon({
        kind: 'gobgp', netns: ng!, asn: AS.twill, routerId: IP.gobgp, label: 'gobgp',
        neighbors: [{ address: IP.twillGobgp, asn: AS.twill, passive: true }],
        // iBGP keeps the next hop a route is given: one of Twill's own addresses, loopback, and a usable one.
        announce: [{ prefix: '10.244.7.0/24', nextHop: IP.twillGobgp }, { prefix: '10.244.8.0/24', nextHop: '127.0.0.1' }, { prefix: '10.244.9.0/24', nextHop: IP.gobgp }],
      }),
    ]);
    twill = await startTwillSpeaker(tw!, [
      '--asn', String(AS.twill), '--router-id', IP.twillFrr, '--listen', `${IP.twillFrr}:179`,
      '--accept', '10.244.0.0/16,le=32', '--accept', '100.64.0.0/10,le=32',
      '--peer', `${IP.frr},asn=${AS.frr},passive,hold=9`,
      '--peer', `${IP.gobgp},asn=${AS.twill},local=${IP.twillGobgp},hold=9`,
    ], 'twill');
    await Promise.all([twill.waitEstablished(IP.frr), twill.waitEstablished(IP.gobgp)]);
    await twill.waitRoute('10.244.3.0/24', IP.frr);
  });

  afterAll(async () => {
    await twill?.stop();
  });

  it('keeps FRR\'s graceful-restart session when someone on FRR\'s host opens a bare TCP connection from its address', async () => {
    const up = twill.lines.findLast((l) => l.event === 'session' && l.peer === IP.frr && l.state === 'established')!;
    expect(up).toMatchObject({ negotiated: { routerId: IP.frr } });
    // A connection from 198.18.9.2 (the only address there) that sends nothing; it gives up after 3 s.
    const bare = await connectPeer(frrNs, IP.twillFrr, 179);
    expect(bare).toEqual({ ok: false, text: 'timeout' });
    expect(downs(twill, IP.frr)).toEqual([]);
    expect(twill.state(IP.frr)).toBe('established');
    expect(await frr.sessionState(IP.twillFrr)).toBe('established');
    expect(twill.routes.has(`${IP.frr} 10.244.3.0/24`)).toBe(true);
    expect(withdrawals(twill, '10.244.3.0/24')).toEqual([]);
  });

  it('keeps a killed FRR\'s routes through its restart (graceful restart, receiving speaker), and drops none at its End-of-RIB', async () => {
    const before = twill.lines.length;
    await frr.kill();
    const down = await twill.waitFor((l) => twill.lines.indexOf(l) >= before && downs(twill, IP.frr).includes(l), 'FRR session down');
    expect(down).toMatchObject({ reason: expect.stringMatching(/closed|failed/), gracefulRestartTime: 120 });
    expect(down.notification).toBeUndefined();
    await frr.restart();
    await twill.waitFor((l) => l.event === 'end-of-rib' && l.peer === IP.frr && twill.lines.indexOf(l) > twill.lines.indexOf(down), 'End-of-RIB from the restarted FRR', 40_000);
    expect(twill.state(IP.frr)).toBe('established');
    expect(twill.routes.has(`${IP.frr} 10.244.3.0/24`)).toBe(true);
    expect(withdrawals(twill, '10.244.3.0/24')).toEqual([]);
  });

  it('ignores routes from gobgpd whose next hop is Twill\'s own address or loopback, says why, and keeps the session', async () => {
    await twill.waitRoute('10.244.9.0/24', IP.gobgp);
    const rejected = await waitFor(() => {
      const r = twill.lines.filter((l) => l.event === 'rejected' && l.peer === IP.gobgp).map((l) => `${String(l.prefix)} ${String(l.reason)}`).sort();
      return r.length >= 2 && r;
    }, { what: 'two rejected lines' });
    expect(rejected).toEqual(['10.244.7.0/24 own-next-hop', '10.244.8.0/24 loopback-next-hop']);
    expect([...twill.routes.values()].filter((r) => r.peer === IP.gobgp).map((r) => r.prefix)).toEqual(['10.244.9.0/24']);
    expect(downs(twill, IP.gobgp)).toEqual([]);
    expect(await gobgp.sessionState(IP.twillGobgp)).toBe('established');
  });

  it('sends Cease/1 to gobgpd when it announces more than the default 10,000 prefixes (no max-prefix configured)', async () => {
    const before = twill.lines.length;
    await gobgp.announceMany(10_001, '100.64.0.0/32');
    const down = await twill.waitFor((l) => twill.lines.indexOf(l) >= before && downs(twill, IP.gobgp).includes(l), 'gobgp session down', 60_000);
    expect(down).toMatchObject({ notification: { direction: 'sent', code: 6, subcode: 1 } });
    expect(down.reason).toMatch(/maximum of 10000 ipv4-unicast prefixes reached/);
  });
});
