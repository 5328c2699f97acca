import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Masquerade, type MasqueradeSpec, type NftTable } from '../../src/nftables/index.js';
import { commandAvailable } from '../helpers/exec.js';
import { connectNetns, createTestNetns, RTPROT_BOOT, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { seenBy, startPeerServer } from '../helpers/peer-address.js';

/*
 * Masquerading for IPv6 (table ip6 twill), on ULA addresses inside test namespaces only: two
 * hosts joined directly, one pod each, and a router outside the cluster network, reached from
 * host 0 only:
 *
 *   pod p0 fd00:10:244:1::2 ── vp0 h0 ul0 fd00:198:18::1 ──── ul0 fd00:198:18::2 h1 vp1 ── pod p1 fd00:10:244:2::2
 *                                  │ up0 fd00:198:19::1/64 (h0's default route)
 *                                router eth0 fd00:198:19::2 (routes fd00:10:244::/56 back via h0)
 *
 * The router routes the pod network back, so without masquerading a pod's connection still
 * works and shows the pod's own address: what the server sees says whether NAT happened.
 */

const CLUSTER_V6 = 'fd00:10:244::/56';
const CLUSTER_V4 = '10.244.0.0/16';
const ROUTER_IP = 'fd00:198:19::2';
const H0_UPLINK_IP = 'fd00:198:19::1';
const P0_IP = 'fd00:10:244:1::2';
const P1_IP = 'fd00:10:244:2::2';


/** Twill's tables in `nft -j list ruleset` of a namespace, as "family name". */
async function twillTables(ns: TestNetns): Promise<string[]> {
  const doc = JSON.parse(await ns.exec('nft', ['-j', 'list', 'ruleset'])) as { nftables: Record<string, { family?: string; name?: string }>[] };
  return doc.nftables.flatMap((o) => (o.table?.name === 'twill' ? [`${o.table.family} ${o.table.name}`] : []));
}

/** A table's content without kernel handles: what two applies of the same input must share. */
function content(t: NftTable | undefined): unknown {
  if (!t) return undefined;
  return { chains: t.chains.map(({ handle: _h, ...c }) => c), rules: t.rules.map(({ handle: _h, ...r }) => r) };
}

type Expr = Record<string, unknown>;
/** A rule's statements as short text ("ip6 saddr != fd00:10:244::/56", "masquerade fully-random"), from nft's JSON. */
function summary(expr: readonly unknown[]): string {
  return expr.map((e) => {
    const [kind, body] = Object.entries(e as Expr)[0]!;
    if (kind === 'match') {
      const m = body as { op: string; left: Expr; right: unknown };
      const payload = m.left.payload as { protocol: string; field: string } | undefined;
      const left = payload ? `${payload.protocol} ${payload.field}` : JSON.stringify(m.left);
      const prefix = (m.right as { prefix?: { addr: string; len: number } }).prefix;
      return `${left} ${m.op} ${prefix ? `${prefix.addr}/${prefix.len}` : JSON.stringify(m.right)}`;
    }
    if (kind === 'masquerade') return `masquerade ${(body as { flags?: string } | null)?.flags ?? ''}`.trim();
    return kind;
  }).join(', ');
}

function setupIpv6Sysctls(ns: TestNetns, forwarding: boolean): void {
  // Addresses usable at once (no DAD), before any link exists so every interface inherits it.
  ns.writeSysctl('net/ipv6/conf/all/accept_dad', 0);
  ns.writeSysctl('net/ipv6/conf/default/accept_dad', 0);
  if (forwarding) ns.writeSysctl('net/ipv6/conf/all/forwarding', 1);
}

describe.skipIf(!isRoot || !commandAvailable('nft'))('masquerading with nftables for IPv6 (table ip6 twill)', () => {
  useCleanup();
  let h0: TestNetns;
  let h1: TestNetns;
  let p0: TestNetns;
  let p1: TestNetns;
  let router: TestNetns;
  let masq0: Masquerade;
  let masq1: Masquerade;
  const v6spec0 = { clusterNetworkV6: CLUSTER_V6, podSubnetV6: 'fd00:10:244:1::/64' };
  const v6spec1 = { clusterNetworkV6: CLUSTER_V6, podSubnetV6: 'fd00:10:244:2::/64' };
  const dual0: MasqueradeSpec = { clusterNetwork: CLUSTER_V4, podSubnet: '10.244.1.0/24', ...v6spec0 };

  beforeAll(async () => {
    [h0, h1, p0, p1, router] = await Promise.all(['h0', 'h1', 'p0', 'p1', 'rt'].map((l) => createTestNetns(l))) as [TestNetns, TestNetns, TestNetns, TestNetns, TestNetns];
    setupIpv6Sysctls(h0, true);
    setupIpv6Sysctls(h1, true);
    for (const ns of [p0, p1, router]) setupIpv6Sysctls(ns, false);

    await connectNetns(h0, h1, { a: { ifname: 'ul0', cidr: 'fd00:198:18::1/64' }, b: { ifname: 'ul0', cidr: 'fd00:198:18::2/64' } });
    await connectNetns(h0, p0, { a: { ifname: 'vp0', cidr: 'fd00:10:244:1::1/64' }, b: { ifname: 'eth0', cidr: `${P0_IP}/64` } });
    await connectNetns(h1, p1, { a: { ifname: 'vp1', cidr: 'fd00:10:244:2::1/64' }, b: { ifname: 'eth0', cidr: `${P1_IP}/64` } });
    await connectNetns(h0, router, { a: { ifname: 'up0', cidr: `${H0_UPLINK_IP}/64` }, b: { ifname: 'eth0', cidr: `${ROUTER_IP}/64` } });
    // Pod subnets routed between the hosts by hand (no backend here: this file tests NAT only).
    await h0.netlink(async (nl) => {
      await nl.replaceRoute({ dst: 'fd00:10:244:2::/64', gateway: 'fd00:198:18::2', protocol: RTPROT_BOOT });
      await nl.replaceRoute({ dst: '::/0', gateway: ROUTER_IP, protocol: RTPROT_BOOT });
    });
    await h1.netlink((nl) => nl.replaceRoute({ dst: 'fd00:10:244:1::/64', gateway: 'fd00:198:18::1', protocol: RTPROT_BOOT }));
    await p0.netlink((nl) => nl.replaceRoute({ dst: '::/0', gateway: 'fd00:10:244:1::1', protocol: RTPROT_BOOT }));
    await p1.netlink((nl) => nl.replaceRoute({ dst: '::/0', gateway: 'fd00:10:244:2::1', protocol: RTPROT_BOOT }));
    await router.netlink((nl) => nl.replaceRoute({ dst: CLUSTER_V6, gateway: H0_UPLINK_IP, protocol: RTPROT_BOOT }));

    await Promise.all([router, p0, p1].map(async (ns) => {
      await startPeerServer(ns, '::');
    }));
    masq0 = new Masquerade({ netns: h0.name });
    masq1 = new Masquerade({ netns: h1.name });
  });

  beforeEach(async () => {
    await Promise.all([masq0.remove(), masq1.remove()]);
  });

  it('masquerades a pod\'s IPv6 traffic leaving the cluster network to the host\'s address', async () => {
    expect(await seenBy(p0, ROUTER_IP)).toBe(P0_IP); // no table: the pod address goes out
    await masq0.apply(v6spec0);
    expect(await seenBy(p0, ROUTER_IP)).toBe(H0_UPLINK_IP);
    expect(await p0.ping(ROUTER_IP)).toBe(true);
  });

  it('the outside can answer only the host: a ping succeeds only when masqueraded', async () => {
    // The router forgets the pod network: replies to a pod address have nowhere to go.
    await router.netlink((nl) => nl.deleteRoute({ dst: CLUSTER_V6, protocol: RTPROT_BOOT }));
    try {
      expect(await p0.ping(ROUTER_IP)).toBe(false);
      await masq0.apply(dual0);
      expect(await p0.ping(ROUTER_IP)).toBe(true);
      await masq0.apply({ clusterNetwork: CLUSTER_V4, podSubnet: '10.244.1.0/24' }); // IPv4 only: ip6 twill goes
      expect(await p0.ping(ROUTER_IP)).toBe(false);
    } finally {
      await router.netlink((nl) => nl.replaceRoute({ dst: CLUSTER_V6, gateway: H0_UPLINK_IP, protocol: RTPROT_BOOT }));
    }
  });

  it('keeps the pod address for IPv6 pod-to-pod traffic between hosts', async () => {
    await Promise.all([masq0.apply(v6spec0), masq1.apply(v6spec1)]);
    expect(await seenBy(p0, P1_IP)).toBe(P0_IP);
    expect(await seenBy(p1, P0_IP)).toBe(P1_IP);
  });

  it('keeps the source of outside traffic to this host\'s pods, and masquerades it towards other hosts\' pods', async () => {
    await Promise.all([masq0.apply(v6spec0), masq1.apply(v6spec1)]);
    expect(await seenBy(router, P0_IP)).toBe(ROUTER_IP); // ! cluster -> this host's pods
    expect(await seenBy(router, P1_IP)).toBe('fd00:198:18::1'); // h0 hands it on as itself
  });

  it('leaves traffic that kube-proxy marked (0x4000) to kube-proxy', async () => {
    await masq0.apply(v6spec0);
    await h0.exec('nft', ['-f', '-'], {
      input: `table ip6 kubetest {\n\tchain pre {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n`
        + `\t\tip6 saddr ${P0_IP} ip6 daddr ${ROUTER_IP} meta mark set 0x4000\n\t}\n}\n`,
    });
    try {
      expect(await seenBy(p0, ROUTER_IP)).toBe(P0_IP);
      await masq0.remove();
      expect(await h0.exec('nft', ['-j', 'list', 'table', 'ip6', 'kubetest'])).toContain('"kubetest"'); // remove() touches only its tables
    } finally {
      await h0.exec('nft', ['delete', 'table', 'ip6', 'kubetest']);
    }
  });

  it('dual-stack apply() installs `ip twill` and `ip6 twill` with the same rules per family', async () => {
    await masq0.apply(dual0);
    expect(await twillTables(h0)).toEqual(['ip twill', 'ip6 twill']);
    const v4 = await masq0.current('ip');
    const v6 = await masq0.current('ip6');
    for (const t of [v4, v6]) {
      expect(t?.chains.map((c) => [c.name, c.type, c.hook, c.prio, c.policy])).toEqual([
        ['postrouting', 'nat', 'postrouting', 100, 'accept'],
        ['forward', 'filter', 'forward', 0, 'accept'],
      ]);
    }
    expect(v6!.rules.map((r) => [r.chain, summary(r.expr), r.comment])).toEqual([
      ['postrouting', `${JSON.stringify({ '&': [{ meta: { key: 'mark' } }, 16384] })} == 16384, return`, 'kube-proxy masquerades what it marked'],
      ['postrouting', 'ip6 saddr == fd00:10:244:1::/64, ip6 daddr == fd00:10:244::/56, return', 'pod to cluster: keep the pod address'],
      ['postrouting', 'ip6 saddr == fd00:10:244::/56, ip6 daddr == fd00:10:244:1::/64, return', 'cluster to this host\'s pods: keep the source'],
      ['postrouting', 'ip6 saddr != fd00:10:244::/56, ip6 daddr == fd00:10:244:1::/64, return', 'outside to this host\'s pods: keep the source'],
      ['postrouting', 'ip6 saddr == fd00:10:244::/56, ip6 daddr != ff00::/8, masquerade fully-random', 'pods to outside'],
      ['postrouting', 'ip6 saddr != fd00:10:244::/56, ip6 daddr == fd00:10:244::/56, masquerade fully-random', 'outside to other hosts\' pods'],
      ['forward', 'ip6 saddr == fd00:10:244::/56, accept', 'from the cluster network'],
      ['forward', 'ip6 daddr == fd00:10:244::/56, accept', 'to the cluster network'],
    ]);
    // The IPv4 table has the same rules, with ip matches on the IPv4 prefixes.
    const asV6 = (r: string): string => r.replaceAll('ip saddr', 'ip6 saddr').replaceAll('ip daddr', 'ip6 daddr')
      .replaceAll('10.244.1.0/24', 'fd00:10:244:1::/64').replaceAll('10.244.0.0/16', CLUSTER_V6).replaceAll('224.0.0.0/4', 'ff00::/8');
    expect(v4!.rules.map((r) => [r.chain, asV6(summary(r.expr)), r.comment])).toEqual(v6!.rules.map((r) => [r.chain, summary(r.expr), r.comment]));
  });

  it('re-apply changes nothing but the handles; a changed spec replaces both tables; drift is repaired', async () => {
    await masq0.apply(dual0);
    const first = [await masq0.current('ip'), await masq0.current('ip6')];
    await masq0.apply(dual0);
    const second = [await masq0.current('ip'), await masq0.current('ip6')];
    expect(await twillTables(h0)).toEqual(['ip twill', 'ip6 twill']);
    expect(second.map(content)).toEqual(first.map(content));
    expect(second[1]!.handle).not.toBe(first[1]!.handle); // replaced as a whole, not edited in place

    // Drift: a rule deleted and one added by hand are gone after the next apply.
    const masqRule = second[1]!.rules.find((r) => r.comment === 'pods to outside')!;
    await h0.exec('nft', ['delete', 'rule', 'ip6', 'twill', 'postrouting', 'handle', String(masqRule.handle)]);
    await h0.exec('nft', ['add', 'rule', 'ip6', 'twill', 'forward', 'drop']);
    expect(await seenBy(p0, ROUTER_IP)).toBe(P0_IP); // the masquerade rule is gone
    await masq0.apply(dual0);
    expect(content(await masq0.current('ip6'))).toEqual(content(first[1]));
    expect(await seenBy(p0, ROUTER_IP)).toBe(H0_UPLINK_IP);

    await masq0.apply({ ...dual0, podSubnetV6: 'fd00:10:244:7::/64' });
    const moved = JSON.stringify((await masq0.current('ip6'))!.rules);
    expect(moved).toContain('"fd00:10:244:7::"');
    expect(moved).not.toContain('"fd00:10:244:1::"');
  });

  it('a family left out of the spec loses its table; the other stays', async () => {
    await masq0.apply(dual0);
    await masq0.apply(v6spec0);
    expect(await twillTables(h0)).toEqual(['ip6 twill']);
    expect(await masq0.current('ip')).toBeUndefined();
    await masq0.apply({ clusterNetwork: CLUSTER_V4, podSubnet: '10.244.1.0/24' });
    expect(await twillTables(h0)).toEqual(['ip twill']);
    expect(await masq0.current('ip6')).toBeUndefined();
  });

  it('remove() deletes both tables, is idempotent, and leaves other tables alone', async () => {
    await h0.exec('nft', ['add', 'table', 'ip6', 'other']);
    try {
      await masq0.apply(dual0);
      await masq0.remove();
      expect(await twillTables(h0)).toEqual([]);
      expect(await masq0.current('ip')).toBeUndefined();
      expect(await masq0.current('ip6')).toBeUndefined();
      await masq0.remove();
      expect(await twillTables(h0)).toEqual([]);
      expect(await h0.exec('nft', ['-j', 'list', 'tables', 'ip6'])).toContain('"other"');
      expect(await seenBy(p0, ROUTER_IP)).toBe(P0_IP);
    } finally {
      await h0.exec('nft', ['delete', 'table', 'ip6', 'other']);
    }
  });

  it('an invalid spec fails before nft runs: the tables in place stay', async () => {
    await masq0.apply(dual0);
    const before = content(await masq0.current('ip6'));
    await expect(masq0.apply({ clusterNetwork: CLUSTER_V4, podSubnet: '10.244.1.0/24', clusterNetworkV6: '10.245.0.0/16', podSubnetV6: '10.245.1.0/24' }))
      .rejects.toThrow(/must be IPv6/);
    expect(content(await masq0.current('ip6'))).toEqual(before);
    expect(await twillTables(h0)).toEqual(['ip twill', 'ip6 twill']);
  });
});
