/**
 * Dual-stack (and IPv6-only) pods on a test host without the CNI plugin: a bridge cni0 holding the
 * first address of each of the host's subnets (as the plugin sets it up), and pods on it with the
 * next addresses, both default routes and no duplicate address detection. And the check a user
 * runs first, per family: does every pod reach every pod on the other hosts.
 */
import { expect } from 'vitest';
import type { Cluster, Host, Pod } from './cluster.js';
import { waitFor } from './wait.js';

/** A host's subnets: "10.244.3.0/24" (absent in an IPv6-only cluster) and "fd10:0:0:3::/64". */
export interface HostSubnets {
  readonly v4?: string | undefined;
  readonly v6: string;
}

/** "10.244.3.0/24", 2 -> "10.244.3.2" (a /24 or shorter ending in .0). */
function v4Address(subnet: string, k: number): string {
  const m = /^(\d+\.\d+\.\d+)\.0\/(\d+)$/.exec(subnet);
  if (!m || Number(m[2]) > 24) throw new Error(`dual-stack pods: ${subnet} is not a /24 ending in .0`);
  return `${m[1]!}.${k}`;
}

/** "fd10:0:0:3::/64", 2 -> "fd10:0:0:3::2". */
function v6Address(subnet: string, k: number): string {
  const m = /^([0-9a-f:]+)::\/64$/.exec(subnet);
  if (!m) throw new Error(`dual-stack pods: ${subnet} is not a /64 ending in ::`);
  return `${m[1]!}::${k.toString(16)}`;
}

/** cni0 on `host` with the gateways of `subnets`, and `count` pods on it (addresses .2, .3, ...). */
export async function addBridgePods(cluster: Cluster, host: Host, subnets: HostSubnets, count = 2): Promise<Pod<Host>[]> {
  await host.netlink((nl) => nl.createBridge({ name: 'cni0' }));
  // Before it goes up: its link-local address is usable at once (the kernel solicits neighbours for
  // forwarded IPv6 packets from it), as on the bridge Twill's CNI plugin makes.
  host.writeSysctl('net.ipv6.conf.cni0.accept_dad', 0);
  await host.netlink(async (nl) => {
    if (subnets.v4 !== undefined) await nl.addAddress('cni0', `${v4Address(subnets.v4, 1)}/24`);
    await nl.addAddress('cni0', `${v6Address(subnets.v6, 1)}/64`, { noDad: true });
    await nl.setUp('cni0');
  });
  const pods: Pod<Host>[] = [];
  for (let k = 2; k < 2 + count; k++) {
    pods.push(await cluster.addPod(host, {
      ...(subnets.v4 !== undefined && { ip: `${v4Address(subnets.v4, k)}/24`, gateway: v4Address(subnets.v4, 1) }),
      ipv6: `${v6Address(subnets.v6, k)}/64`, gatewayV6: v6Address(subnets.v6, 1), bridge: 'cni0',
    }));
  }
  return pods;
}

/**
 * Pairs of pods on different hosts that cannot reach each other over `family` (each pair gets 5 s
 * of tries, all pairs at once); an empty list when every pod reaches every other host's pods.
 */
export async function unreachablePairs(pods: readonly Pod<Host>[], family: 4 | 6): Promise<string[]> {
  const addressOf = (p: Pod<Host>): string => {
    const ip = family === 4 ? p.ip : p.ipv6;
    if (ip === undefined) throw new Error(`pod ${p.name} has no IPv${family} address`);
    return ip;
  };
  const pairs = pods.flatMap((from) => pods.filter((to) => to.host !== from.host).map((to) => ({ from, to: addressOf(to) })));
  expect(pairs.length).toBeGreaterThan(0);
  const results = await Promise.all(pairs.map(async ({ from, to }) => ({
    path: `${addressOf(from)} -> ${to}`,
    ok: await waitFor(() => from.ping(to), { timeoutMs: 5000, intervalMs: 100, what: `reaching ${to}` }).then(() => true, () => false),
  })));
  return results.filter((r) => !r.ok).map((r) => r.path);
}
