import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdAvailable } from '../helpers/etcd.js';
import { commandAvailable, exec } from '../helpers/exec.js';
import { attachMeshPod, leaseSubnet, pingAll, startMeshBed, type MeshBed, type MeshPod } from '../helpers/pod-mesh.js';
import { CTL_MAIN } from '../helpers/twill-speaker.js';
import { startAgent, type TestAgent } from '../helpers/twilld.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

// The bgp backend with route reflectors (RFC 4456) instead of the full mesh: 6 hosts on one
// segment, hosts 0 and 1 reflect. The other hosts have sessions to the two reflectors only; the
// reflectors peer with everyone; every pod still reaches every pod.

const PREFIX = '/coreos.com/network';
const HOSTS = 6;
const referencePlugins = commandAvailable('/usr/lib/cni/bridge');

interface PeerJson { address: string; role: string; state: string }

describe.skipIf(!isRoot || !etcdAvailable() || !referencePlugins)('bgp backend: 6 hosts, 2 route reflectors', () => {
  useCleanup();
  let bed: MeshBed;
  const agents: TestAgent[] = [];
  const pods: MeshPod[] = [];
  const ip = (i: number): string => bed.cluster.hosts[i]!.underlayIp;

  const peersOf = async (i: number): Promise<PeerJson[]> =>
    (JSON.parse(await exec('ip', ['netns', 'exec', bed.cluster.hosts[i]!.name, 'node', CTL_MAIN, 'bgp', 'peers', '-o', 'json'])) as { peers: PeerJson[] }).peers;

  const routeCount = async (i: number): Promise<number> =>
    (await bed.cluster.hosts[i]!.json<{ dst: string }[]>(['route', 'show', 'proto', '84'])).filter((r) => r.dst.startsWith('10.244.')).length;

  beforeAll(async () => {
    bed = await startMeshBed({ hosts: HOSTS, label: 'bgp-rr', backend: 'bgp', prefix: PREFIX });
    await bed.etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'bgp', RouteReflectors: [ip(0), ip(1)] } })]);
    for (let i = 0; i < HOSTS; i++) {
      const dir = join(bed.dir, `host${i}`);
      mkdirSync(dir, { recursive: true });
      agents[i] = await startAgent(bed.cluster.hosts[i]!, { etcd: bed.etcd.clientUrl, dir, args: ['--iface', 'eth0'] });
    }
    for (const a of agents) await a.waitReady();
    for (let i = 0; i < HOSTS; i++) pods.push(await attachMeshPod(bed, i, agents[i]!, { label: `h${i}p0`, dataDir: join(bed.dir, `host${i}`, 'ipam') }));
    await waitFor(async () => {
      for (let i = 0; i < HOSTS; i++) if (await routeCount(i) !== HOSTS - 1) return false;
      return true;
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'every host routing the 5 other subnets' });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a?.daemon.stop()));
  });

  it('non-reflectors have sessions to the two reflectors only; a reflector to everyone', async () => {
    for (let i = 2; i < HOSTS; i++) {
      expect((await peersOf(i)).map((p) => `${p.address} ${p.role} ${p.state}`)).toEqual([`${ip(0)} reflector established`, `${ip(1)} reflector established`]);
    }
    const reflector = (await peersOf(0)).map((p) => `${p.address} ${p.role} ${p.state}`);
    expect(reflector).toEqual([1, 2, 3, 4, 5].map((j) => `${ip(j)} ${j === 1 ? 'reflector' : 'reflector-client'} established`));
  });

  it('every pod reaches every pod; each host routes the others\' subnets via their own address (reflection keeps the next hop)', async () => {
    expect(await pingAll(pods)).toEqual([]);
    for (let i = 0; i < HOSTS; i++) {
      const routes = (await bed.cluster.hosts[i]!.json<{ dst: string; gateway?: string }[]>(['route', 'show', 'proto', '84'])).filter((r) => r.dst.startsWith('10.244.'));
      const expected = agents.map((a, j) => `${leaseSubnet(a)} via ${ip(j)}`).filter((_, j) => j !== i).sort();
      expect(routes.map((r) => `${r.dst} via ${r.gateway ?? '-'}`).sort()).toEqual(expected);
    }
  });
});
