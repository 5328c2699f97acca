import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attachPod } from '../src/ctl/demo/reference-cni.js';
import { createCluster, type Cluster } from '../test/helpers/cluster.js';
import { createTestNetns, type TestNetns } from '../test/helpers/netns.js';

/**
 * Flannel's data path built by hand with iproute2 and nft on a cluster of two hosts of its own:
 * what flanneld programs for its vxlan or host-gw backend (flannel.md: the VXLAN device with
 * VNI 1, port 8472, no learning, MTU underlay - 50 and the lease's network address /32; per remote
 * host a permanent neighbour, an FDB entry and an onlink route, or for host-gw a route via the
 * host), its masquerade and forward-accept rules, and pods wired as flannel's CNI plugin wires
 * them: Debian's bridge + host-local plugins with the subnet.env values. No Twill code runs in it,
 * so a benchmark can tell the cost of the kernel's pod path on this machine from Twill's own.
 */
export type FlannelBackend = 'vxlan' | 'host-gw';

export interface FlannelPath {
  readonly cluster: Cluster;
  readonly pods: readonly { readonly ns: TestNetns; readonly ip: string }[];
}

const NETWORK = '10.244.0.0/16';
const UNDERLAY = '198.18.7.0/24';

/** Host i's lease: 10.244.(20 + i).0/24. */
function subnetOf(i: number): { network: string; prefix: string } {
  return { network: `10.244.${20 + i}.0`, prefix: `10.244.${20 + i}.0/24` };
}

/** flanneld's rules (iptables in flannel, the same matches here in nft): masquerade what leaves the cluster network, accept its forwarding. */
function masqueradeRules(ownSubnet: string): string {
  return `table ip flannel-ref {
  chain postrouting {
    type nat hook postrouting priority srcnat;
    ip saddr ${NETWORK} ip daddr ${NETWORK} return
    ip saddr ${NETWORK} ip daddr != 224.0.0.0/4 masquerade random,fully-random
    ip saddr != ${NETWORK} ip daddr ${ownSubnet} return
    ip saddr != ${NETWORK} ip daddr ${NETWORK} masquerade random,fully-random
  }
  chain forward {
    type filter hook forward priority filter;
    ip saddr ${NETWORK} accept
    ip daddr ${NETWORK} accept
  }
}
`;
}

/** Two hosts with flannel's `backend` state and one pod each. Registered with the cleanup registry through its parts. */
export async function flannelPath(backend: FlannelBackend, dir: string): Promise<FlannelPath> {
  const cluster = await createCluster({ hosts: 2, underlayCidr: UNDERLAY });
  const vtepMacs: string[] = [];
  mkdirSync(dir, { recursive: true });
  for (const [i, host] of cluster.hosts.entries()) {
    if (backend === 'vxlan') {
      await host.exec('ip', ['link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '1', 'local', host.underlayIp, 'dev', 'eth0', 'dstport', '8472', 'nolearning']);
      await host.exec('ip', ['link', 'set', 'flannel.1', 'mtu', '1450', 'up']);
      await host.exec('ip', ['addr', 'add', `${subnetOf(i).network}/32`, 'dev', 'flannel.1']);
      const [link] = await host.json<{ address: string }[]>(['link', 'show', 'flannel.1']);
      vtepMacs.push(link!.address);
    }
    const rules = join(dir, `rules-${i}.nft`);
    writeFileSync(rules, masqueradeRules(subnetOf(i).prefix));
    await host.exec('nft', ['-f', rules]);
  }
  for (const [i, host] of cluster.hosts.entries()) {
    for (const [j, remote] of cluster.hosts.entries()) {
      if (j === i) continue;
      const { network, prefix } = subnetOf(j);
      if (backend === 'vxlan') {
        await host.exec('ip', ['neigh', 'replace', network, 'lladdr', vtepMacs[j]!, 'dev', 'flannel.1', 'nud', 'permanent']);
        await host.exec('bridge', ['fdb', 'append', vtepMacs[j]!, 'dev', 'flannel.1', 'dst', remote.underlayIp]);
        await host.exec('ip', ['route', 'replace', prefix, 'via', network, 'dev', 'flannel.1', 'onlink']);
      } else {
        await host.exec('ip', ['route', 'replace', prefix, 'via', remote.underlayIp, 'dev', 'eth0']);
      }
    }
  }
  const pods: { ns: TestNetns; ip: string }[] = [];
  for (const [i, host] of cluster.hosts.entries()) {
    const ns = await createTestNetns(`fl${i}pod`);
    const { ip } = await attachPod({
      hostNetns: host.name, podNetnsPath: ns.netnsPath, containerId: ns.name, ifname: 'eth0', isDefaultGateway: true,
      dataDir: join(dir, `ipam-${i}`),
      // subnet.env as flanneld writes it with --ip-masq: the CNI plugin then leaves masquerading to flanneld.
      subnetEnv: { network: NETWORK, subnet: `10.244.${20 + i}.1/24`, mtu: backend === 'vxlan' ? 1450 : 1500, ipMasq: true },
    });
    pods.push({ ns, ip });
  }
  return { cluster, pods };
}
