import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, type Cluster } from '../helpers/cluster.js';
import { exec, run } from '../helpers/exec.js';
import { tempDir } from '../helpers/cleanup.js';
import { etcdAvailable, startEtcd, type Etcd } from '../helpers/etcd.js';
import { startAgent, type TestAgent } from '../helpers/twilld.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { sleep, waitFor } from '../helpers/wait.js';

const PREFIX = '/coreos.com/network';
const CTL = resolve(import.meta.dirname, '../../dist/src/ctl/main.js');
const ETCD_IP = '198.18.0.254';

interface LeaseJson { PublicIP: string; PublicIPv6: null; BackendType: string; BackendData: unknown }

/** `etcdctl get --prefix` of the subnets, as {key: value}. */
async function etcdLeases(etcd: Etcd): Promise<Record<string, LeaseJson>> {
  const out = await etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`]);
  const lines = out.split('\n').filter((l) => l !== '');
  const leases: Record<string, LeaseJson> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) leases[lines[i]!] = JSON.parse(lines[i + 1]!) as LeaseJson;
  return leases;
}

describe.skipIf(!isRoot || !etcdAvailable())('twilld leases against a real etcd', () => {
  useCleanup();
  let cluster: Cluster;
  let etcd: Etcd;
  let dir: string;
  const agents: TestAgent[] = [];

  const agentFor = async (i: number, args: string[] = []): Promise<TestAgent> => {
    const hostDir = join(dir, `host${i}`);
    mkdirSync(hostDir, { recursive: true });
    const agent = await startAgent(cluster.hosts[i]!, { etcd: etcd.clientUrl, dir: hostDir, args: ['--iface', 'eth0', ...args] });
    agents[i] = agent;
    return agent;
  };

  beforeAll(async () => {
    cluster = await createCluster({ hosts: 4 });
    // etcd lives on the underlay (hosts cannot reach the root namespace's loopback).
    await cluster.underlay.netlink(async (nl) => nl.addAddress('br0', `${ETCD_IP}/24`));
    etcd = await startEtcd({ netns: cluster.underlay.name, host: ETCD_IP });
    dir = tempDir('agents');
    await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'alloc' } })]);
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a?.daemon.stop()));
  });

  it('gives 3 agents 3 distinct subnets, flannel-shaped leases and subnet files', async () => {
    for (let i = 0; i < 3; i++) await agentFor(i, ['--subnet-lease-ttl', '3s']);
    await Promise.all(agents.map((a) => a.waitReady()));
    const envs = agents.map((a) => a.subnetEnv()!);
    const subnets = envs.map((e) => e.FLANNEL_SUBNET);
    expect(new Set(subnets).size).toBe(3);
    for (const e of envs) {
      expect(e).toMatchObject({ FLANNEL_NETWORK: '10.244.0.0/16', FLANNEL_MTU: '1500', FLANNEL_IPMASQ: 'false' });
      expect(e.FLANNEL_SUBNET).toMatch(/^10\.244\.\d+\.1\/24$/);
    }
    const leases = await etcdLeases(etcd);
    expect(Object.keys(leases)).toHaveLength(3);
    for (const [i, agent] of agents.entries()) {
      const net = agent.subnetEnv()!.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0');
      const key = `${PREFIX}/subnets/${net}-24`;
      expect(leases[key]).toEqual({ PublicIP: cluster.hosts[i]!.underlayIp, PublicIPv6: null, BackendType: 'alloc', BackendData: null });
      // Bound to an etcd lease with the TTL asked for.
      const ttl = JSON.parse(await etcd.etcdctl(['get', key, '-w', 'json'])) as { kvs: { lease: number }[] };
      expect(ttl.kvs[0]!.lease).toBeGreaterThan(0);
    }
    // Every agent knows all three leases.
    await waitFor(async () => (await Promise.all(agents.map((a) => a.metric('twill_leases_known')))).every((n) => n === 3),
      { timeoutMs: 10_000, what: 'every agent to know 3 leases' });
    expect((await agents[0]!.http('/healthz')).status).toBe(200);

    // twillctl status on host 0: its subnet, its lease in etcd, and its agent's health.
    const status = JSON.parse(await exec('ip', ['netns', 'exec', cluster.hosts[0]!.name, 'node', CTL, 'status', '-o', 'json',
      '--etcd-endpoints', etcd.clientUrl, '--subnet-file', agents[0]!.subnetFile])) as Record<string, unknown>;
    expect(status).toMatchObject({
      subnet: agents[0]!.subnetEnv()!.FLANNEL_SUBNET, network: '10.244.0.0/16', mtu: 1500, ready: true,
      lease: { publicIp: cluster.hosts[0]!.underlayIp, backendType: 'alloc', reservation: false },
      agent: { healthz: 200, readyz: 200 },
    });
    // Pointed at a subnet file this host does not have, status is not "ready" however the agent
    // answers: exit 1, and the table says why.
    const wrong = await run('node', [CTL, 'status', '--etcd-endpoints', etcd.clientUrl, '--subnet-file', `${agents[0]!.subnetFile}.missing`],
      { netns: cluster.hosts[0]!.name, allowFailure: true });
    expect(wrong.code, wrong.stdout).toBe(1);
    expect(wrong.stdout).toMatch(/^ready +no: no subnet file$/m);
    expect(wrong.stdout).toMatch(/^agent .*readyz 200$/m);
  });

  it('gives a SIGKILLed agent its subnet back when it restarts', async () => {
    const before = agents[1]!.subnetEnv()!.FLANNEL_SUBNET;
    await agents[1]!.daemon.kill('SIGKILL');
    const again = await agentFor(1, ['--subnet-lease-ttl', '3s']);
    await again.waitReady();
    expect(again.subnetEnv()!.FLANNEL_SUBNET).toBe(before);
    expect(Object.keys(await etcdLeases(etcd))).toHaveLength(3);
  });

  it('drops a host that never returns from the others once its 3 s lease expires', async () => {
    const gone = agents[2]!.subnetEnv()!.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0');
    await agents[2]!.daemon.kill('SIGKILL');
    await waitFor(async () => !Object.keys(await etcdLeases(etcd)).some((k) => k.endsWith(`/${gone}-24`)),
      { timeoutMs: 10_000, what: 'the dead host\'s lease to expire' });
    await waitFor(async () => (await agents[0]!.metric('twill_leases_known')) === 2 && (await agents[1]!.metric('twill_leases_known')) === 2,
      { timeoutMs: 5_000, what: 'the others to drop it' });
    // The live agents kept renewing their 3 s leases meanwhile.
    expect(await agents[0]!.metric('twill_lease_renewals_total', 'result="ok"')).toBeGreaterThan(0);
    expect(Object.keys(await etcdLeases(etcd))).toHaveLength(2);
  });

  it('rides out a 20 s etcd outage, keeps its state, and sees changes made after it', async () => {
    const subnet0 = agents[0]!.subnetEnv()!.FLANNEL_SUBNET;
    await agents[0]!.daemon.stop();
    // A longer TTL for this part: an outage longer than the TTL expires leases by design.
    const agent = await agentFor(0, ['--subnet-lease-ttl', '60s']);
    await agent.waitReady();
    expect(agent.subnetEnv()!.FLANNEL_SUBNET).toBe(subnet0);

    await etcd.kill('SIGKILL');
    await sleep(20_000);
    expect(agent.daemon.running).toBe(true);
    expect((await agent.http('/healthz')).status).toBe(200);
    expect((await agent.http('/readyz')).status).toBe(200);
    expect(agent.subnetEnv()!.FLANNEL_SUBNET).toBe(subnet0);
    expect(await agent.metric('twill_etcd_errors_total', 'op="renew"') ?? 0).toBeGreaterThanOrEqual(0);

    await etcd.restart();
    // A host joins right after etcd is back, before the agent has necessarily reconnected.
    await etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.200.0-24`,
      JSON.stringify({ PublicIP: '198.18.0.200', PublicIPv6: null, BackendType: 'alloc', BackendData: null })]);
    await waitFor(async () => (await agent.metric('twill_leases_known')) === 3, { timeoutMs: 20_000, what: 'the agent to see the new lease' });
    expect(agent.subnetEnv()!.FLANNEL_SUBNET).toBe(subnet0);
  }, 90_000);

  it('skips malformed leases of other hosts and keeps running', async () => {
    await etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.201.0-24`, '{"PublicIP": not json']);
    await etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.202.0-24`,
      JSON.stringify({ PublicIP: '198.18.0.202', PublicIPv6: null, BackendType: 'alloc', BackendData: null })]);
    await waitFor(async () => (await agents[0]!.metric('twill_leases_known')) === 4, { timeoutMs: 10_000, what: 'the valid lease to arrive' });
    expect(agents[0]!.daemon.running).toBe(true);
    expect(agents[0]!.daemon.output()).toMatch(/malformed lease skipped/);
  });

  it('reads a flannel-written dual-stack lease as an IPv4-only agent: its IPv4 part, without errors (issue 17)', async () => {
    const known = await agents[0]!.metric('twill_leases_known');
    const name = '10.244.203.0-24&fc00:0:0:cb::-64';
    await etcd.etcdctl(['put', `${PREFIX}/subnets/${name}`, JSON.stringify({
      PublicIP: '198.18.0.203', PublicIPv6: 'fd00::203', BackendType: 'alloc', BackendData: null, BackendV6Data: { VtepMAC: '02:00:00:00:02:03' },
    })]);
    await waitFor(async () => (await agents[0]!.metric('twill_leases_known')) === known! + 1, { timeoutMs: 10_000, what: 'the dual-stack lease to arrive' });
    // A barrier instead of a pause: the watch hands leases over in order, so once a lease written
    // after it is known (and routed), whatever the agent had to say about the dual-stack one is said.
    const barrier = '10.244.204.0-24';
    await etcd.etcdctl(['put', `${PREFIX}/subnets/${barrier}`, JSON.stringify({ PublicIP: '198.18.0.204', PublicIPv6: null, BackendType: 'alloc', BackendData: null })]);
    await waitFor(async () => (await agents[0]!.metric('twill_leases_known')) === known! + 2, { timeoutMs: 10_000, what: 'the barrier lease to arrive' });
    expect(agents[0]!.daemon.output()).not.toMatch(/(malformed lease skipped|lease not routed)[^\n]*10\.244\.203\.0/);
    expect((await agents[0]!.http('/healthz')).status).toBe(200);
    // twillctl shows both subnets, and both addresses.
    const table = await exec('ip', ['netns', 'exec', cluster.hosts[0]!.name, 'node', CTL, 'leases', '--etcd-endpoints', etcd.clientUrl]);
    expect(table.split('\n')[0]).toMatch(/^SUBNET\s+IPV6 SUBNET\s+PUBLIC IP\s+PUBLIC IPV6\s+BACKEND\s+EXPIRES$/);
    expect(table).toMatch(/^10\.244\.203\.0\/24\s+fc00:0:0:cb::\/64\s+198\.18\.0\.203\s+fd00::203\s+alloc\s+reserved$/m);
    const ownSubnet = agents[0]!.subnetEnv()!.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0/24');
    expect(table.split('\n').find((l) => l.startsWith(`${ownSubnet} `))!.split(/\s+/).slice(0, 6))
      .toEqual([ownSubnet, '-', cluster.hosts[0]!.underlayIp, '-', 'alloc', 'in']);
    await etcd.etcdctl(['del', `${PREFIX}/subnets/${name}`]);
    await etcd.etcdctl(['del', `${PREFIX}/subnets/${barrier}`]);
  });

  it('waits for a network config and reports an invalid one without exiting', async () => {
    await etcd.etcdctl(['put', '/other/prefix/config', '{"Network": "10.300.0.0/16"}']);
    const agent = await agentFor(3, ['--etcd-prefix', '/other/prefix']);
    // Logs are JSON lines: the quotes around the bad value are escaped.
    await waitFor(() => /invalid network config Network \\"10\.300\.0\.0\/16\\"/.test(agent.daemon.output()),
      { timeoutMs: 10_000, what: 'the config error in the log' });
    expect((await agent.http('/readyz')).status).toBe(503);
    await etcd.etcdctl(['put', '/other/prefix/config', JSON.stringify({ Network: '10.50.0.0/16', Backend: { Type: 'alloc' } })]);
    await agent.waitReady();
    expect(agent.subnetEnv()!.FLANNEL_NETWORK).toBe('10.50.0.0/16');
  });

  it('stops cleanly on SIGTERM and keeps its lease', async () => {
    const agent = agents[3]!;
    const subnet = agent.subnetEnv()!.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0');
    await agent.daemon.stop();
    expect(agent.daemon.exitInfo).toMatchObject({ code: 0 });
    expect(await etcd.etcdctl(['get', `/other/prefix/subnets/${subnet}-24`, '--print-value-only'])).toContain('"BackendType":"alloc"');
  });

  it('refuses EnableIPv6 while its backend does not route IPv6, leases nothing, and takes the config once fixed', async () => {
    const dual = { Network: '10.60.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:60::/48', Backend: { Type: 'alloc' } };
    await etcd.etcdctl(['put', '/v6/prefix/config', JSON.stringify(dual)]);
    const agent = await agentFor(3, ['--etcd-prefix', '/v6/prefix', '--public-ipv6', 'fd00::3']);
    await waitFor(() => /network config refused/.test(agent.daemon.output()), { timeoutMs: 10_000, what: 'the refusal in the log' });
    expect(agent.daemon.output()).toMatch(/EnableIPv6: the alloc backend does not route IPv6 yet/);
    const health = await agent.http('/healthz');
    expect(health.status).toBe(503);
    expect(health.body).toMatch(/config_refused: EnableIPv6: the alloc backend does not route IPv6 yet/);
    expect(await etcd.etcdctl(['get', '--prefix', '--keys-only', '/v6/prefix/subnets/'])).toBe('');
    await etcd.etcdctl(['put', '/v6/prefix/config', JSON.stringify({ ...dual, EnableIPv6: false })]);
    await agent.waitReady();
    const value = await etcd.etcdctl(['get', '--prefix', '--print-value-only', '/v6/prefix/subnets/']);
    expect(JSON.parse(value)).toEqual({ PublicIP: cluster.hosts[3]!.underlayIp, PublicIPv6: null, BackendType: 'alloc', BackendData: null });
    expect(agent.subnetEnv()!.FLANNEL_IPV6_SUBNET).toBeUndefined();
  });
});
