import { createNetns, netnsPath, withNetns, writeSysctl } from '../../netlink/index.js';

// The demo's namespaces and underlay, built with Twill's own netlink layer. Nothing is created
// in the caller's network namespace: the underlay is a namespace holding a bridge, each host a
// namespace joined to it by a veth, each pod a namespace that the CNI plugin wires into a host.
//
//   twill-demo-underlay:  br0 198.18.0.254/24 (etcd listens here) ── veth-host1 ── veth-host2 ...
//   twill-demo-host1:     eth0 198.18.0.1/24, lo, ip_forward=1        (twilld runs here)
//   twill-demo-host1-pod1: eth0 from the bridge CNI plugin, lo

export const DEMO_PREFIX = 'twill-demo-';
export const UNDERLAY_NETNS = `${DEMO_PREFIX}underlay`;
export const UNDERLAY_BRIDGE = 'br0';
export const UNDERLAY_NETWORK = '198.18.0.0/24';
/** The underlay bridge's address, where etcd listens. */
export const UNDERLAY_GATEWAY = '198.18.0.254';
export const UNDERLAY_MTU = 1500;
export const HOST_IFNAME = 'eth0';
export const MAX_HOSTS = 20;

/** Host `i` (0-based) is twill-demo-host<i+1>. */
export function hostNetnsName(i: number): string {
  return `${DEMO_PREFIX}host${i + 1}`;
}

export function podNetnsName(host: number, pod: number): string {
  return `${hostNetnsName(host)}-pod${pod + 1}`;
}

/** Short label for tables: "h1p2". */
export function podLabel(host: number, pod: number): string {
  return `h${host + 1}p${pod + 1}`;
}

export function hostUnderlayIp(i: number): string {
  return `198.18.0.${i + 1}`;
}

/** The IPv6 underlay of `twillctl demo --ipv6` (unique-local space, inside the namespaces only). */
export const UNDERLAY_NETWORK_V6 = 'fd00:18::/64';

export function hostUnderlayIpv6(i: number): string {
  return `fd00:18::${(i + 1).toString(16)}`;
}

/** Creates a namespace and brings its lo up. Teardown finds every one by the name prefix. */
async function namespace(name: string): Promise<string> {
  const path = createNetns(name);
  await withNetns(path, (nl) => nl.setUp('lo'));
  return path;
}

export async function createUnderlay(): Promise<void> {
  const path = await namespace(UNDERLAY_NETNS);
  await withNetns(path, async (nl) => {
    await nl.createBridge({ name: UNDERLAY_BRIDGE, mtu: UNDERLAY_MTU });
    await nl.addAddress(UNDERLAY_BRIDGE, `${UNDERLAY_GATEWAY}/24`);
    await nl.setUp(UNDERLAY_BRIDGE);
  });
}

/**
 * Host `i`: its namespace, a veth to the underlay bridge (eth0 inside), address, lo, forwarding;
 * with `ipv6`, also its IPv6 underlay address (without duplicate address detection, so usable at
 * once) and IPv6 forwarding.
 */
export async function createHost(i: number, ipv6 = false): Promise<void> {
  const name = hostNetnsName(i);
  const path = await namespace(name);
  const port = `veth-host${i + 1}`;
  await withNetns(netnsPath(UNDERLAY_NETNS), async (nl) => {
    await nl.createVeth({ name: port, peerName: HOST_IFNAME, peerNetnsPath: path, mtu: UNDERLAY_MTU });
    await nl.setMaster(port, UNDERLAY_BRIDGE);
    await nl.setUp(port);
  });
  if (ipv6) {
    writeSysctl(`net.ipv6.conf.${HOST_IFNAME}.accept_dad`, 0, path);
    writeSysctl('net.ipv6.conf.all.forwarding', 1, path);
  }
  await withNetns(path, async (nl) => {
    await nl.addAddress(HOST_IFNAME, `${hostUnderlayIp(i)}/24`);
    if (ipv6) await nl.addAddress(HOST_IFNAME, `${hostUnderlayIpv6(i)}/64`);
    await nl.setUp(HOST_IFNAME);
  });
  writeSysctl('net.ipv4.ip_forward', 1, path);
}

/** An empty pod namespace with lo up; the CNI plugin adds its eth0. Returns its path. */
export function createPodNetns(host: number, pod: number): Promise<string> {
  return namespace(podNetnsName(host, pod));
}
