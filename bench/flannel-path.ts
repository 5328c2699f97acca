import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attachPod } from '../src/ctl/demo/reference-cni.js';
import { createCluster, type Cluster } from '../test/helpers/cluster.js';
import { addFlannelDevice, addFlannelDirectRoute, addFlannelIpipDevice, addFlannelIpipPeer, addFlannelPeer } from '../test/helpers/flannel-state.js';
import { createTestNetns, type TestNetns } from '../test/helpers/netns.js';

/**
 * Flannel's data path built by hand with iproute2 and nft on a cluster of two hosts of its own:
 * what flanneld programs for its vxlan, ipip or host-gw backend (test/helpers/flannel-state.ts: the
 * VXLAN device with VNI 1, port 8472, no learning, MTU underlay - 50 and the lease's network
 * address /32; per remote host a permanent neighbour, an FDB entry and an onlink route; for ipip
 * flannel.ipip with MTU underlay - 20 and an onlink route via each host; for host-gw a route via the host), its masquerade and forward-accept rules, and pods wired as flannel's CNI plugin wires
 * them: Debian's bridge + host-local plugins with the subnet.env values. No Twill code runs in it,
 * so a benchmark can tell the cost of the kernel's pod path on this machine from Twill's own.
 */
export type FlannelBackend = 'vxlan' | 'host-gw' | 'ipip';

export interface FlannelPath {
  readonly cluster: Cluster;
  readonly pods: readonly { readonly ns: TestNetns; readonly ip: string }[];
}

const NETWORK = '10.244.0.0/16';
const UNDERLAY = '198.18.7.0/24';
/** The pod MTU flanneld writes to subnet.env: the underlay's minus the encapsulation. */
const FLANNEL_MTU: Record<FlannelBackend, number> = { vxlan: 1450, ipip: 1480, 'host-gw': 1500 };

/** Host i's lease: 10.244.(20 + i).0/24. */
function subnetOf(i: number): string {
  return `10.244.${20 + i}.0/24`;
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
    if (backend === 'vxlan') vtepMacs.push(await addFlannelDevice(host, { localIp: host.underlayIp, subnet: subnetOf(i) }));
    if (backend === 'ipip') await addFlannelIpipDevice(host, { localIp: host.underlayIp, subnet: subnetOf(i) });
    const rules = join(dir, `rules-${i}.nft`);
    writeFileSync(rules, masqueradeRules(subnetOf(i)));
    await host.exec('nft', ['-f', rules]);
  }
  for (const [i, host] of cluster.hosts.entries()) {
    for (const [j, remote] of cluster.hosts.entries()) {
      if (j === i) continue;
      const peer = { subnet: subnetOf(j), publicIp: remote.underlayIp };
      if (backend === 'vxlan') await addFlannelPeer(host, { ...peer, vtepMac: vtepMacs[j]! });
      else if (backend === 'ipip') await addFlannelIpipPeer(host, peer);
      else await addFlannelDirectRoute(host, peer);
    }
  }
  const pods: { ns: TestNetns; ip: string }[] = [];
  for (const [i, host] of cluster.hosts.entries()) {
    const ns = await createTestNetns(`fl${i}pod`);
    const { ip } = await attachPod({
      hostNetns: host.name, podNetnsPath: ns.netnsPath, containerId: ns.name, ifname: 'eth0', isDefaultGateway: true,
      dataDir: join(dir, `ipam-${i}`),
      // subnet.env as flanneld writes it with --ip-masq: the CNI plugin then leaves masquerading to flanneld.
      subnetEnv: { network: NETWORK, subnet: `10.244.${20 + i}.1/24`, mtu: FLANNEL_MTU[backend], ipMasq: true },
    });
    pods.push({ ns, ip });
  }
  return { cluster, pods };
}
