/**
 * Issue 13, items 1-5 and 16, end to end: three real agents (vxlan) in namespaces, real etcd, and
 * a hostile writer with etcdctl. Whatever it writes, every pod keeps reaching every pod, the
 * underlay's connected route and an operator's static route survive, and each refusal is counted.
 * The old agent programmed every one of these keys (a /25 inside another host's subnet, a key for
 * this host's own subnet, the whole network, broadcast and loopback tunnel endpoints) and replaced
 * the static route.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdAvailable } from '../helpers/etcd.js';
import { commandAvailable } from '../helpers/exec.js';
import { startAgent, type TestAgent } from '../helpers/twilld.js';
import { attachMeshPod, leaseSubnet, pingAll, startMeshBed, type MeshBed, type MeshPod } from '../helpers/pod-mesh.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const PREFIX = '/coreos.com/network';
const NOBODY = '198.18.0.66'; // an underlay address no host has
const referencePlugins = commandAvailable('/usr/lib/cni/bridge');

interface IpRoute { dst: string; gateway?: string; dev: string; protocol?: string; scope?: string }

const value = (publicIp: string, mac = '02:66:66:66:66:66'): string =>
  JSON.stringify({ PublicIP: publicIp, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: mac } });

const keyOf = (subnet: string): string => `${PREFIX}/subnets/${subnet.replace('/', '-')}`;
const third = (subnet: string): string => subnet.split('.').slice(0, 3).join('.');


describe.skipIf(!isRoot || !etcdAvailable() || !referencePlugins)('twilld against a hostile etcd writer', () => {
  useCleanup();
  let bed: MeshBed;
  const agents: TestAgent[] = [];
  const pods: MeshPod[] = [];

  const startOn = async (i: number, args: readonly string[] = [], prefix = PREFIX): Promise<TestAgent> => {
    const hostDir = join(bed.dir, `host${i}-${prefix.replaceAll('/', '_')}`);
    mkdirSync(hostDir, { recursive: true });
    return startAgent(bed.cluster.hosts[i]!, { etcd: bed.etcd.clientUrl, dir: hostDir, args: ['--iface', 'eth0', '--resync-interval', '1s', '--etcd-prefix', prefix, ...args] });
  };

  /** etcd's lease ID of a key, in the hex etcdctl takes (IDs exceed JSON's safe integers). */
  const etcdLeaseOf = async (key: string): Promise<string> => {
    const fields = await bed.etcd.etcdctl(['get', key, '-w', 'fields']);
    return BigInt(/"Lease" : (\d+)/.exec(fields)![1]!).toString(16);
  };

  beforeAll(async () => {
    bed = await startMeshBed({ hosts: 4, label: 'hostile', backend: 'vxlan', prefix: PREFIX });
    for (let i = 0; i < 3; i++) agents[i] = await startOn(i);
    await Promise.all(agents.map((a) => a.waitReady()));
    for (let i = 0; i < 3; i++) pods.push(await attachMeshPod(bed, i, agents[i]!, { label: `hostile-h${i}`, dataDir: join(bed.dir, `ipam${i}`) }));
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a?.daemon.stop()));
  });

  it('keeps every pod reaching every pod, the underlay route and a static route, and counts each refusal', async () => {
    expect(await pingAll(pods)).toEqual([]);
    const [a, b, c] = agents.map(leaseSubnet) as [string, string, string];
    const [hostA] = bed.cluster.hosts;
    // An operator's static route in the cluster range on host A, which a lease will then claim.
    await hostA!.exec('ip', ['route', 'add', '10.244.200.0/24', 'via', '198.18.0.99', 'dev', 'eth0']);

    const bLease = await etcdLeaseOf(keyOf(b));
    const writes: [string, string, string?][] = [
      [`${keyOf(b).replace(/\.0-24$/, '.128-25')}`, value(NOBODY)],        // half of host B's subnet
      [`${keyOf(a)}&fc00:0:0:a::-64`, value(NOBODY)],                       // host A's own subnet, a younger key
      [`${PREFIX}/subnets/${third(c)}.7-32`, value(NOBODY)],                // one address of host C's: not even a key flannel reads (malformed)
      [`${PREFIX}/subnets/10.244.0.0-16`, value(NOBODY)],                   // the whole network
      [`${PREFIX}/subnets/10.244.201.0-24`, value('255.255.255.255')],      // broadcast endpoint
      [`${PREFIX}/subnets/10.244.202.0-24`, value('224.0.0.1')],            // multicast endpoint
      [`${PREFIX}/subnets/10.244.203.0-24`, value('127.0.0.1')],            // loopback endpoint
      [`${PREFIX}/subnets/10.244.204.0-24`, value(bed.cluster.hosts[0]!.underlayIp, '02:66:66:66:66:04')], // host A's own address
      [`${PREFIX}/subnets/10.244.200.0-24`, value(NOBODY)],                 // where A has a static route
      [keyOf(b), value(NOBODY), bLease],                                     // B's own record, same etcd lease
    ];
    for (const [key, v, lease] of writes) await bed.etcd.etcdctl(['put', ...(lease ? ['--lease', lease] : []), key, v]);

    // Host B writes its own record back.
    await waitFor(async () => JSON.parse(await bed.etcd.etcdctl(['get', keyOf(b), '--print-value-only'])).PublicIP === bed.cluster.hosts[1]!.underlayIp,
      { what: 'host B to restore its lease record', timeoutMs: 10_000 });
    expect(await etcdLeaseOf(keyOf(b))).toBe(bLease);
    expect(await agents[1]!.metric('twill_own_lease_conflicts_total', 'action="restored"')).toBe(1);

    const rejected = (agent: TestAgent, reason: string): Promise<number | undefined> => agent.metric('twill_leases_rejected_total', `reason="${reason}"`);
    await waitFor(async () => (await rejected(agents[0]!, 'public_ip_is_local')) === 1 && (await rejected(agents[2]!, 'overlaps_older_lease')) === 1,
      { what: 'every agent to have screened the writes', timeoutMs: 10_000 });
    // Host A: 2 wrong lengths, its own subnet, 3 bad endpoints, its own address; a static route in the way.
    expect(await rejected(agents[0]!, 'wrong_prefix_length')).toBe(2);
    expect(await rejected(agents[0]!, 'overlaps_own_subnet')).toBe(1);
    expect(await rejected(agents[0]!, 'public_ip_unusable')).toBe(3);
    expect(await agents[0]!.metric('twill_backend_entries_skipped_total', 'reason="foreign_route"')).toBe(1);
    // Hosts B and C: the younger key of A's subnet loses to A's own lease.
    for (const agent of agents.slice(1)) {
      expect(await rejected(agent, 'wrong_prefix_length')).toBe(2);
      expect(await rejected(agent, 'overlaps_older_lease')).toBe(1);
      expect(await rejected(agent, 'public_ip_unusable')).toBe(3);
    }

    for (const [i, host] of bed.cluster.hosts.slice(0, 3).entries()) {
      // The connected underlay route is untouched.
      expect(await host.json<IpRoute[]>(['route', 'show', '198.18.0.0/24'])).toEqual([expect.objectContaining({ dev: 'eth0', protocol: 'kernel', scope: 'link' })]);
      const twill = (await host.json<IpRoute[]>(['route', 'show', 'proto', '84'])).map((r) => r.dst).sort();
      const others = [a, b, c].filter((_, j) => j !== i);
      // Only whole /24s of real hosts, plus the well-formed hostile ones this host may route.
      const extra = i === 0 ? [] : ['10.244.200.0/24', '10.244.204.0/24'];
      expect(twill).toEqual([...others, ...extra].sort());
      // Host A's neighbour entry on B and C still carries A's VTEP MAC, not the hostile one.
      if (i > 0) {
        const neigh = await host.json<{ dst: string; lladdr: string }[]>(['neigh', 'show', 'dev', 'twill.1', 'nud', 'permanent']);
        expect(neigh.find((n) => `${n.dst}/24` === a)?.lladdr).not.toBe('02:66:66:66:66:66');
      }
    }
    // A /32 key is no lease at all: flannel reads prefix lengths into 5 bits (pkg/subnet/subnet.go).
    for (const agent of agents) expect(agent.daemon.output()).toMatch(/"key":"[^"]*\.7-32","reason":"[^\n]*prefix length \\"32\\": flannel reads only 0\.\.31 \(5 bits\)[^\n]*"msg":"malformed lease skipped"/);
    // The operator's static route is still the operator's.
    expect(await hostA!.json<IpRoute[]>(['route', 'show', '10.244.200.0/24'])).toEqual([expect.objectContaining({ gateway: '198.18.0.99' })]);
    expect(await pingAll(pods)).toEqual([]);
  });

  it('gives up a subnet whose key another writer took over, says so, and becomes reachable at a new one', async () => {
    const c = leaseSubnet(agents[2]!);
    // Re-put without an etcd lease: the key is no longer bound to host C's lease.
    await bed.etcd.etcdctl(['put', keyOf(c), value(NOBODY)]);
    await waitFor(() => leaseSubnet(agents[2]!) !== c, { what: 'host C to move to another subnet', timeoutMs: 10_000 });
    const moved = leaseSubnet(agents[2]!);
    expect(await agents[2]!.metric('twill_own_lease_conflicts_total', 'action="reacquired"')).toBe(1);
    expect(agents[2]!.daemon.output()).toMatch(/another writer took over this host's lease key/);
    await agents[2]!.waitReady();
    // The other hosts route the new subnet to host C, and the taken key to the writer's address.
    for (const host of bed.cluster.hosts.slice(0, 2)) {
      await waitFor(async () => (await host.json<IpRoute[]>(['route', 'show', moved])).length === 1, { what: `${host.name} to route ${moved}`, timeoutMs: 5000 });
    }
    expect(JSON.parse(await bed.etcd.etcdctl(['get', keyOf(moved), '--print-value-only'])).PublicIP).toBe(bed.cluster.hosts[2]!.underlayIp);
  });

  it('refuses a network config that contains its underlay: unhealthy, not ready, nothing programmed, until it is fixed', async () => {
    const prefix = '/underlay-test';
    await bed.etcd.etcdctl(['put', `${prefix}/config`, JSON.stringify({ Network: '198.18.0.0/16', Backend: { Type: 'vxlan' } })]);
    const agent = await startOn(3, [], prefix);
    agents.push(agent);
    await waitFor(async () => (await agent.http('/healthz')).status === 503, { what: 'healthz 503', timeoutMs: 10_000 });
    const healthz = JSON.parse((await agent.http('/healthz')).body) as { status: string; reason: string };
    expect(healthz).toMatchObject({ status: 'unhealthy', reason: expect.stringMatching(/config_refused: the cluster network 198\.18\.0\.0\/16 contains 198\.18\.0\.4\/24, an address of the external interface eth0/) as string });
    expect((await agent.http('/readyz')).status).toBe(503);
    expect(await agent.metric('twill_health_problem', 'reason="config_refused"')).toBe(1);
    const host = bed.cluster.hosts[3]!;
    expect(await host.json<{ ifname: string }[]>(['link', 'show', 'type', 'vxlan'])).toEqual([]);
    expect(await host.json<IpRoute[]>(['route', 'show', '198.18.0.0/24'])).toEqual([expect.objectContaining({ protocol: 'kernel' })]);
    expect(agent.subnetEnv()).toBeUndefined();

    await bed.etcd.etcdctl(['put', `${prefix}/config`, JSON.stringify({ Network: '10.250.0.0/16', Backend: { Type: 'vxlan' } })]);
    await agent.waitReady();
    expect(await agent.metric('twill_health_problem', 'reason="config_refused"')).toBe(0);
    await agent.daemon.stop();
  });

  it('turns unhealthy while etcd stays unreachable past the renewal deadline, and recovers', async () => {
    const prefix = '/outage-test';
    await bed.etcd.etcdctl(['put', `${prefix}/config`, JSON.stringify({ Network: '10.251.0.0/16', Backend: { Type: 'vxlan' } })]);
    const agent = await startOn(3, ['--subnet-lease-ttl', '3s'], prefix);
    agents.push(agent);
    await agent.waitReady();
    await bed.etcd.kill('SIGSTOP');
    try {
      await waitFor(async () => (await agent.http('/healthz')).status === 503, { what: 'healthz 503 during the outage', timeoutMs: 20_000 });
      const healthz = JSON.parse((await agent.http('/healthz')).body) as { reason: string };
      expect(healthz.reason).toMatch(/^etcd_unreachable: etcd unreachable since .*; the lease had to be renewed by /);
      expect((await agent.http('/readyz')).status).toBe(503);
      expect(await agent.metric('twill_health_problem', 'reason="etcd_unreachable"')).toBe(1);
    } finally {
      await bed.etcd.kill('SIGCONT');
    }
    await waitFor(async () => (await agent.http('/healthz')).status === 200, { what: 'healthz 200 after the outage', timeoutMs: 20_000 });
    await agent.waitReady();
    await agent.daemon.stop();
  });
});
