/**
 * Pods spread over test hosts, and the check a user runs first: does every pod reach every other.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSubnetEnv } from '../../src/core/subnet-env.js';
import { attachPod } from '../../src/ctl/demo/reference-cni.js';
import { tempDir } from './cleanup.js';
import { createCluster, type Cluster } from './cluster.js';
import { startEtcd, type Etcd } from './etcd.js';
import { run } from './exec.js';
import { createTestNetns, type TestNetns } from './netns.js';
import { startAgent, type TestAgent } from './twilld.js';

export interface MeshPod { readonly ns: TestNetns; readonly host: number; readonly ip: string }

/** etcd's address on the bed's underlay bridge, where every host reaches it. */
export const MESH_ETCD_IP = '198.18.0.254';

/** A test cluster with etcd on its underlay and a temp dir for the agents' files. */
export interface MeshBed {
  readonly cluster: Cluster;
  readonly etcd: Etcd;
  readonly dir: string;
}

/**
 * `hosts` hosts, etcd at MESH_ETCD_IP, and the network config under `prefix`: 10.244.0.0/16 with
 * `backend`, or `config` as given. `underlayCidrV6` gives the hosts an IPv6 underlay too.
 */
export async function startMeshBed(opts: {
  readonly hosts: number; readonly label: string; readonly backend: string; readonly prefix: string;
  readonly config?: Record<string, unknown> | undefined; readonly underlayCidrV6?: string | undefined;
}): Promise<MeshBed> {
  const cluster = await createCluster({ hosts: opts.hosts, underlayCidrV6: opts.underlayCidrV6 });
  await cluster.underlay.netlink(async (nl) => nl.addAddress('br0', `${MESH_ETCD_IP}/24`));
  const etcd = await startEtcd({ netns: cluster.underlay.name, host: MESH_ETCD_IP });
  await etcd.etcdctl(['put', `${opts.prefix}/config`, JSON.stringify(opts.config ?? { Network: '10.244.0.0/16', Backend: { Type: opts.backend } })]);
  return { cluster, etcd, dir: tempDir(opts.label) };
}

/** Starts twilld on host `host` of the bed (files in `<dir>/host<i>`) and waits until it is ready. */
export async function startMeshAgent(bed: MeshBed, host: number, args: readonly string[] = ['--iface', 'eth0', '--resync-interval', '1s']): Promise<TestAgent> {
  const hostDir = join(bed.dir, `host${host}`);
  mkdirSync(hostDir, { recursive: true });
  const agent = await startAgent(bed.cluster.hosts[host]!, { etcd: bed.etcd.clientUrl, dir: hostDir, args });
  await agent.waitReady();
  return agent;
}

/**
 * A pod on host `host` wired by Debian's reference bridge + host-local plugins from the agent's
 * subnet file, as kube-flannel's conflist does (with FLANNEL_IPMASQ=false the bridge plugin
 * masquerades pod traffic leaving the subnet, so replies come to an underlay address that only a
 * default route reaches: isDefaultGateway).
 */
export async function attachMeshPod(bed: MeshBed, host: number, agent: TestAgent, opts: { readonly label: string; readonly dataDir: string }): Promise<MeshPod> {
  const env = parseSubnetEnv(readFileSync(agent.subnetFile, 'utf8'), agent.subnetFile);
  const ns = await createTestNetns(opts.label);
  const { ip } = await attachPod({
    hostNetns: bed.cluster.hosts[host]!.name, podNetnsPath: ns.netnsPath, containerId: ns.name, ifname: 'eth0',
    subnetEnv: env, dataDir: opts.dataDir, isDefaultGateway: true,
  });
  return { ns, host, ip: ip.split('/')[0]! };
}

/** Pings every pod from every other (2 echoes each, all pairs at once); returns the pairs that failed. */
export async function pingAll(pods: readonly MeshPod[]): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(pods.flatMap((from) => pods.filter((to) => to !== from).map(async (to) => {
    const r = await run('ip', ['netns', 'exec', from.ns.name, 'ping', '-c', '2', '-i', '0.2', '-W', '2', to.ip], { allowFailure: true });
    if (r.code !== 0) failures.push(`${from.ip} (host ${from.host}) -> ${to.ip} (host ${to.host})`);
  })));
  return failures;
}

/** The network address of an agent's subnet file's FLANNEL_SUBNET ("10.244.3.1/24" -> "10.244.3.0/24"). */
export function leaseSubnet(agent: TestAgent): string {
  return agent.subnetEnv()!.FLANNEL_SUBNET!.replace(/\.1\/(\d+)$/, '.0/$1');
}
