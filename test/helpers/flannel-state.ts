/**
 * flanneld's kernel state and lease, built by hand exactly as flanneld (vxlan, v0.20) builds them
 * (reference flannel.md §3 and "Observed with the real flanneld"), for tests of the migration
 * from flannel and for benchmarks of flannel's data path. No flanneld binary is needed: what a
 * host keeps after flanneld stopped (or panicked) is this state, and only this state.
 *
 *   const mac = await addFlannelDevice(host, { localIp: host.underlayIp, subnet: '10.244.21.0/24' });
 *   await addFlannelPeer(host, { subnet: '10.244.22.0/24', vtepMac: peerMac, publicIp: '198.18.0.2' });
 *   await etcd.etcdctl(['put', flannelLeaseKey(prefix, '10.244.21.0/24'), flannelLeaseRecord(host.underlayIp, mac)]);
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatMac } from '../../src/core/mac.js';
import type { Daemon } from './daemon.js';
import type { TestNetns } from './netns.js';
import { waitFor } from './wait.js';

export const FLANNEL_VNI = 1;
/** Port 0 in flannel's config means the kernel's default, 8472. */
export const FLANNEL_PORT = 8472;
export const FLANNEL_DEVICE = `flannel.${FLANNEL_VNI}`;

/** "10.244.21.0/24" -> "10.244.21.0": the address flanneld puts on its device, and peers' neighbour key. */
export function networkAddress(subnet: string): string {
  return subnet.split('/')[0]!;
}

/**
 * A MAC as flanneld makes one (pkg/ip GenerateHardwareAddr): random, locally administered,
 * unicast. flanneld sets it at creation, before systemd's MACAddressPolicy could (PR #1485).
 */
export function randomVtepMac(): string {
  const bytes = randomBytes(6);
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return formatMac(bytes);
}

export interface FlannelDeviceOptions {
  /** The external interface's address: the tunnel source (VXLAN "local"). */
  readonly localIp: string;
  /** This host's lease subnet; its network address goes on the device as a /32. */
  readonly subnet: string;
  /** The external interface; default eth0. */
  readonly dev?: string;
  /** Default 1450: the underlay's 1500 minus the 50-byte VXLAN overhead. */
  readonly mtu?: number;
  /** Default a fresh random MAC, as flanneld picks at every start. */
  readonly mac?: string;
}

/** flannel.1 (VNI 1, port 8472, no learning, up) with the lease's /32; returns its MAC (the lease's VtepMAC). */
export async function addFlannelDevice(host: TestNetns, opts: FlannelDeviceOptions): Promise<string> {
  const mac = opts.mac ?? randomVtepMac();
  await host.exec('ip', ['link', 'add', FLANNEL_DEVICE, 'address', mac, 'mtu', String(opts.mtu ?? 1450), 'type', 'vxlan',
    'id', String(FLANNEL_VNI), 'local', opts.localIp, 'dev', opts.dev ?? 'eth0', 'dstport', String(FLANNEL_PORT), 'nolearning']);
  await host.exec('ip', ['link', 'set', FLANNEL_DEVICE, 'up']);
  await host.exec('ip', ['addr', 'add', `${networkAddress(opts.subnet)}/32`, 'dev', FLANNEL_DEVICE]);
  return mac;
}

export interface FlannelPeer {
  /** The remote lease's subnet. */
  readonly subnet: string;
  /** The remote lease's BackendData.VtepMAC. */
  readonly vtepMac: string;
  /** The remote lease's PublicIP. */
  readonly publicIp: string;
}

/**
 * What flanneld adds per remote lease, in its order (neighbour, FDB, route: the kernel never
 * ARPs on the overlay). Its routes carry no protocol, so the kernel stamps them "boot".
 */
export async function addFlannelPeer(host: TestNetns, peer: FlannelPeer): Promise<void> {
  const gateway = networkAddress(peer.subnet);
  await host.exec('ip', ['neigh', 'replace', gateway, 'lladdr', peer.vtepMac, 'dev', FLANNEL_DEVICE, 'nud', 'permanent']);
  await host.exec('bridge', ['fdb', 'replace', peer.vtepMac, 'dev', FLANNEL_DEVICE, 'dst', peer.publicIp, 'self', 'permanent']);
  await host.exec('ip', ['route', 'replace', peer.subnet, 'via', gateway, 'dev', FLANNEL_DEVICE, 'onlink']);
}

/**
 * flanneld's route for a peer on the same L2 segment: with DirectRouting (vxlan) instead of the
 * three entries above, and for every peer with the host-gw backend.
 */
export async function addFlannelDirectRoute(host: TestNetns, peer: Omit<FlannelPeer, 'vtepMac'>, dev = 'eth0'): Promise<void> {
  await host.exec('ip', ['route', 'replace', peer.subnet, 'via', peer.publicIp, 'dev', dev]);
}

/** flanneld's ipip device (pkg/backend/ipip): local = the host's address, no remote, MTU underlay - 20, the lease's /32. */
export const FLANNEL_IPIP_DEVICE = 'flannel.ipip';

export async function addFlannelIpipDevice(host: TestNetns, opts: { readonly localIp: string; readonly subnet: string; readonly mtu?: number }): Promise<void> {
  await host.exec('ip', ['link', 'add', FLANNEL_IPIP_DEVICE, 'mtu', String(opts.mtu ?? 1480), 'type', 'ipip', 'local', opts.localIp]);
  await host.exec('ip', ['link', 'set', FLANNEL_IPIP_DEVICE, 'up']);
  await host.exec('ip', ['addr', 'add', `${networkAddress(opts.subnet)}/32`, 'dev', FLANNEL_IPIP_DEVICE]);
}

/** flanneld's ipip route for a peer: onlink via its PublicIP through flannel.ipip (the tunnel takes its destination from the gateway). */
export async function addFlannelIpipPeer(host: TestNetns, peer: Omit<FlannelPeer, 'vtepMac'>): Promise<void> {
  await host.exec('ip', ['route', 'replace', peer.subnet, 'via', peer.publicIp, 'dev', FLANNEL_IPIP_DEVICE, 'onlink']);
}

/** flannel's lease key: <prefix>/subnets/10.244.21.0-24. */
export function flannelLeaseKey(prefix: string, subnet: string): string {
  return `${prefix}/subnets/${subnet.replace('/', '-')}`;
}

/** flanneld's vxlan lease record, as it writes it into etcd (flannel.md §2). */
export function flannelLeaseRecord(publicIp: string, vtepMac: string): string {
  return JSON.stringify({ PublicIP: publicIp, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: FLANNEL_VNI, VtepMAC: vtepMac } });
}

/**
 * A process that looks like a running flanneld to /proc (its comm is "flanneld"): a copy of
 * sleep under that name in `dir`, running inside `ns` until stopped (with the namespace at the latest).
 */
export async function startFakeFlanneld(ns: TestNetns, dir: string): Promise<Daemon> {
  const binary = join(dir, 'flanneld');
  copyFileSync('/bin/sleep', binary);
  const daemon = await ns.spawn(binary, ['600'], { label: `fake-flanneld-${ns.name}` });
  // It starts as `ip netns exec` and becomes "flanneld" only once that execs it: a check of
  // /proc before then finds no flanneld (a flaky takeover test).
  await waitFor(() => {
    try {
      return readFileSync(`/proc/${daemon.pid}/comm`, 'utf8').trim() === 'flanneld';
    } catch {
      return false;
    }
  }, { timeoutMs: 5000, intervalMs: 5, what: 'the fake flanneld to run under its name' });
  return daemon;
}
