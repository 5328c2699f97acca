import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Masquerade, NftError, spawnRunner, type NftTable } from '../../src/nftables/index.js';
import { createCluster, type Host, type Pod } from '../helpers/cluster.js';
import { commandAvailable } from '../helpers/exec.js';
import { connectNetns, createTestNetns, RTPROT_BOOT, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { seenBy, startPeerServer } from '../helpers/peer-address.js';

/*
 * Two hosts on the underlay 198.18.0.0/24, pods on bridges cni0, and a router outside the
 * cluster network, reached from host 0 only:
 *
 *   pod p0  10.244.1.2 ─┐                                  ┌─ pod p1 10.244.2.2
 *   pod p0b 10.244.1.3 ─┴ cni0 h0 eth0 198.18.0.1 ── br0 ── eth0 198.18.0.2 h1 cni0
 *                          │ up0 198.19.200.1/30 (h0's default route)
 *                        router eth0 198.19.200.2 (routes 10.244.0.0/16 back via h0)
 *
 * The router routes the pod network back, so without masquerading a pod's connection still
 * works and shows the pod's own address: what the server sees says whether NAT happened.
 */

const CLUSTER_NETWORK = '10.244.0.0/16';
const ROUTER_IP = '198.19.200.2';
const H0_UPLINK_IP = '198.19.200.1';



/** The `ip twill` tables in `nft -j list ruleset` of a namespace. */
async function twillTables(ns: TestNetns): Promise<unknown[]> {
  const doc = JSON.parse(await ns.exec('nft', ['-j', 'list', 'ruleset'])) as { nftables: Record<string, { family?: string; name?: string }>[] };
  return doc.nftables.filter((o) => o.table?.family === 'ip' && o.table.name === 'twill');
}

/** A table's content without kernel handles: what two applies of the same input must share. */
function content(t: NftTable | undefined): unknown {
  if (!t) return undefined;
  return {
    chains: t.chains.map(({ handle: _h, ...c }) => c),
    rules: t.rules.map(({ handle: _h, ...r }) => r),
  };
}

describe.skipIf(!isRoot || !commandAvailable('nft'))('masquerading with nftables (table ip twill)', () => {
  useCleanup();
  let h0: Host;
  let h1: Host;
  let p0: Pod<Host>;
  let p0b: Pod<Host>;
  let p1: Pod<Host>;
  let router: TestNetns;
  let masq0: Masquerade;
  let masq1: Masquerade;
  const spec0 = { clusterNetwork: CLUSTER_NETWORK, podSubnet: '10.244.1.0/24' };
  const spec1 = { clusterNetwork: CLUSTER_NETWORK, podSubnet: '10.244.2.0/24' };

  beforeAll(async () => {
    const cluster = await createCluster({ hosts: 2 });
    [h0, h1] = cluster.hosts as [Host, Host];
    // Pod subnets routed between the hosts by hand (no backend here: this file tests NAT only).
    await Promise.all([h0, h1].map((h, i) => h.netlink(async (nl) => {
      await nl.createBridge({ name: 'cni0' });
      await nl.addAddress('cni0', `10.244.${i + 1}.1/24`);
      await nl.setUp('cni0');
      const other = i === 0 ? '198.18.0.2' : '198.18.0.1';
      await nl.replaceRoute({ dst: `10.244.${2 - i}.0/24`, gateway: other, protocol: RTPROT_BOOT });
    })));
    p0 = await cluster.addPod(h0, { ip: '10.244.1.2/24', gateway: '10.244.1.1', bridge: 'cni0' });
    p0b = await cluster.addPod(h0, { ip: '10.244.1.3/24', gateway: '10.244.1.1', bridge: 'cni0' });
    p1 = await cluster.addPod(h1, { ip: '10.244.2.2/24', gateway: '10.244.2.1', bridge: 'cni0' });

    router = await createTestNetns('rt');
    await connectNetns(h0, router, { a: { ifname: 'up0', cidr: `${H0_UPLINK_IP}/30` }, b: { ifname: 'eth0', cidr: `${ROUTER_IP}/30` } });
    await h0.netlink((nl) => nl.replaceRoute({ dst: '0.0.0.0/0', gateway: ROUTER_IP, protocol: RTPROT_BOOT }));
    await router.netlink((nl) => nl.replaceRoute({ dst: CLUSTER_NETWORK, gateway: H0_UPLINK_IP, protocol: RTPROT_BOOT }));

    await Promise.all([router, p0, p0b, p1].map((ns) => startPeerServer(ns, '0.0.0.0')));
    masq0 = new Masquerade({ netns: h0.name });
    masq1 = new Masquerade({ netns: h1.name });
  });

  beforeEach(async () => {
    await Promise.all([masq0.remove(), masq1.remove()]);
  });

  it('masquerades a pod\'s traffic leaving the cluster network to the host\'s address', async () => {
    expect(await seenBy(p0, ROUTER_IP)).toBe('10.244.1.2'); // no table: the pod address goes out
    await masq0.apply(spec0);
    expect(await seenBy(p0, ROUTER_IP)).toBe(H0_UPLINK_IP);
    expect(await seenBy(p0b, ROUTER_IP)).toBe(H0_UPLINK_IP);
  });

  it('keeps the pod address for pod-to-pod traffic, to another host and on the same host', async () => {
    await Promise.all([masq0.apply(spec0), masq1.apply(spec1)]);
    expect(await seenBy(p0, '10.244.2.2')).toBe('10.244.1.2');
    expect(await seenBy(p1, '10.244.1.2')).toBe('10.244.2.2');
    expect(await seenBy(p0, '10.244.1.3')).toBe('10.244.1.2');
  });

  it('keeps the source of outside traffic to this host\'s pods, and masquerades it towards other hosts\' pods', async () => {
    await Promise.all([masq0.apply(spec0), masq1.apply(spec1)]);
    expect(await seenBy(router, '10.244.1.2')).toBe(ROUTER_IP); // rule 4: ! cluster -> this host's pods
    expect(await seenBy(router, '10.244.2.2')).toBe('198.18.0.1'); // rule 6: h0 hands it on as itself
  });

  it('leaves traffic that kube-proxy marked (0x4000) to kube-proxy', async () => {
    await masq0.apply(spec0);
    // Stand-in for kube-proxy: mark p0's traffic to the router, in a table of its own.
    await h0.exec('nft', ['-f', '-'], {
      input: `table ip kubetest {\n\tchain pre {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n`
        + `\t\tip saddr 10.244.1.2 ip daddr ${ROUTER_IP} meta mark set 0x4000\n\t}\n}\n`,
    });
    try {
      expect(await seenBy(p0, ROUTER_IP)).toBe('10.244.1.2');
      expect(await seenBy(p0b, ROUTER_IP)).toBe(H0_UPLINK_IP); // unmarked: still masqueraded
      await masq0.remove();
      expect(await h0.exec('nft', ['-j', 'list', 'table', 'ip', 'kubetest'])).toContain('"kubetest"'); // remove() touches only its table
    } finally {
      await h0.exec('nft', ['delete', 'table', 'ip', 'kubetest']);
    }
  });

  it('shows the table in `nft -j list ruleset`; apply() twice leaves exactly one table with the same rules', async () => {
    await masq0.apply(spec0);
    const first = await masq0.current();
    expect(await twillTables(h0)).toHaveLength(1);
    expect(first?.chains.map((c) => [c.name, c.type, c.hook, c.prio, c.policy])).toEqual([
      ['postrouting', 'nat', 'postrouting', 100, 'accept'],
      ['forward', 'filter', 'forward', 0, 'accept'],
    ]);
    expect(first?.rules.map((r) => r.chain)).toEqual([...Array<string>(6).fill('postrouting'), 'forward', 'forward']);
    expect(first?.rules.filter((r) => JSON.stringify(r.expr).includes('"fully-random"'))).toHaveLength(2);

    await masq0.apply(spec0);
    const second = await masq0.current();
    expect(await twillTables(h0)).toHaveLength(1);
    expect(content(second)).toEqual(content(first));
    expect(second!.handle).not.toBe(first!.handle); // replaced as a whole, not edited in place

    await masq0.apply({ clusterNetwork: CLUSTER_NETWORK, podSubnet: '10.244.7.0/24' });
    expect(await twillTables(h0)).toHaveLength(1);
    expect(JSON.stringify((await masq0.current())!.rules)).toContain('"10.244.7.0"');
    expect(JSON.stringify((await masq0.current())!.rules)).not.toContain('"10.244.1.0"');
  });

  it('remove() deletes the table and is idempotent; current() is then undefined', async () => {
    await masq0.apply(spec0);
    await masq0.remove();
    expect(await twillTables(h0)).toEqual([]);
    expect(await masq0.current()).toBeUndefined();
    await masq0.remove();
    expect(await masq0.current()).toBeUndefined();
    expect(await seenBy(p0, ROUTER_IP)).toBe('10.244.1.2');
  });

  it('a replacement nft rejects leaves the old table in place (one transaction) and fails with nft\'s stderr', async () => {
    await masq0.apply(spec0);
    const before = await masq0.current();
    const real = spawnRunner({ netns: h0.name });
    // Corrupt the script's last rule, as a bug in rendering would: nft must refuse all of it.
    const broken = new Masquerade({ runner: (args, input) => real(args, input?.replace('ip daddr 10.244.0.0/16 accept', 'ip daddr 10.244.0.0/16 acept')) });
    const err = await broken.apply(spec0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NftError);
    expect((err as NftError).stderr).toMatch(/Error: syntax error/);
    expect((err as NftError).exitCode).toBe(1);
    expect(content(await masq0.current())).toEqual(content(before));
    expect((await masq0.current())!.handle).toBe(before!.handle);
    expect(await seenBy(p0, ROUTER_IP)).toBe(H0_UPLINK_IP);
  });
});
