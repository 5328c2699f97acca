import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSubnetEnv } from './dist/src/core/subnet-env.js';
import { attachPod } from './dist/src/ctl/demo/reference-cni.js';
import { cleanup, tempDir } from './dist/test/helpers/cleanup.js';
import { createCluster } from './dist/test/helpers/cluster.js';
import { startEtcd } from './dist/test/helpers/etcd.js';
import { createTestNetns } from './dist/test/helpers/netns.js';
import { startAgent } from './dist/test/helpers/twilld.js';
const backend = process.argv[2] ?? 'vxlan';
const PREFIX = '/coreos.com/network';
const ETCD_IP = '198.18.0.254';
const cluster = await createCluster({ hosts: 2 });
await cluster.underlay.netlink(async (nl) => nl.addAddress('br0', `${ETCD_IP}/24`));
const etcd = await startEtcd({ netns: cluster.underlay.name, host: ETCD_IP });
await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: backend } })]);
const dir = tempDir(`bench-${backend}`);
const agents = []; const pods = [];
for (const [i, host] of cluster.hosts.entries()) {
  const hostDir = join(dir, `host${i}`); mkdirSync(hostDir, { recursive: true });
  const agent = await startAgent(host, { etcd: etcd.clientUrl, dir: hostDir, args: ['--iface', 'eth0', '--ip-masq', '--log-level', 'warn'] });
  agents.push(agent); await agent.waitReady();
  const ns = await createTestNetns(`h${i}pod`);
  const { ip } = await attachPod({ hostNetns: host.name, podNetnsPath: ns.netnsPath, containerId: ns.name, ifname: 'eth0',
    subnetEnv: parseSubnetEnv(readFileSync(agent.subnetFile, 'utf8'), agent.subnetFile), dataDir: join(hostDir, 'ipam'), isDefaultGateway: true });
  pods.push({ ns: ns.name, ip });
}
writeFileSync('/tmp/tp-env.json', JSON.stringify({ hosts: cluster.hosts.map((h) => ({ name: h.name, ip: h.underlayIp })), underlay: cluster.underlay.name, pods }));
console.log('ready');
await new Promise((r) => process.on('SIGTERM', r));
await Promise.all(agents.map((x) => x.daemon.stop()));
await cleanup.runAll();
console.log('cleaned');
