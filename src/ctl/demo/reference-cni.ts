import { accessSync, constants as fsc, existsSync } from 'node:fs';
import { join } from 'node:path';
import { TwillError } from '../../core/errors.js';
import { networkPrefix } from '../../core/ip.js';
import type { SubnetEnv } from '../../core/subnet-env.js';
import { describeFailure, runCommand, type CommandResult } from './exec.js';

/**
 * Wires a pod into a host the way flannel's CNI plugin does (flannel.md §4), with Debian's
 * reference plugins (package containernetworking-plugins, /usr/lib/cni, CNI <= 1.0.0): the
 * host's subnet.env becomes a `bridge` + `host-local` config, and the bridge plugin runs inside
 * the host's network namespace. The demo uses it, and so can tests that need real pods:
 *
 *   const env = parseSubnetEnv(readFileSync(subnetFile, 'utf8'), subnetFile);
 *   const pod = { hostNetns: 'h1', podNetnsPath: '/run/netns/h1-p1', containerId: 'h1-p1', subnetEnv: env, dataDir };
 *   const { ip, gateway } = await attachPod(pod);   // e.g. 10.244.3.2 via 10.244.3.1 on cni0
 *   ...
 *   await detachPod(pod);                            // CNI DEL: same config, same ids
 *
 * Nothing runs in the caller's own network namespace: every plugin call is
 * `ip netns exec <hostNetns> /usr/lib/cni/bridge`.
 */

export const REFERENCE_CNI_DIR = '/usr/lib/cni';
/** The plugins a bridge + host-local config needs. */
export const REFERENCE_PLUGINS = ['bridge', 'host-local'] as const;
/** The newest CNI version Debian 12's plugins (1.1.1) speak. */
export const REFERENCE_CNI_VERSION = '1.0.0';

export interface PodAttachment {
  /** Name of the host's network namespace (an entry of /run/netns): the plugins run there. */
  readonly hostNetns: string;
  /** The pod's network namespace file (CNI_NETNS), e.g. /run/netns/<pod>. */
  readonly podNetnsPath: string;
  /** CNI_CONTAINERID: letters, digits, `_`, `.` and `-`. */
  readonly containerId: string;
  /** CNI_IFNAME, the interface inside the pod; default eth0. */
  readonly ifname?: string | undefined;
  /** The host's subnet.env (parseSubnetEnv): subnet, network, MTU and masquerade setting. */
  readonly subnetEnv: SubnetEnv;
  /** host-local's dataDir (per host: the address files and the lock). */
  readonly dataDir: string;
  /** Bridge in the host namespace; default cni0 (flannel's). */
  readonly bridge?: string | undefined;
  /** Also give the pod a default route via the bridge (kube-flannel's conflist sets it); default false. */
  readonly isDefaultGateway?: boolean | undefined;
  /** CNI network name; default "twill". */
  readonly networkName?: string | undefined;
  /** Directory of the plugins (CNI_PATH); default /usr/lib/cni. */
  readonly cniPath?: string | undefined;
  /** Per plugin call; default 30 s. */
  readonly timeoutMs?: number | undefined;
  /**
   * Wire the pod with Twill's own plugin instead of bridge + host-local: `shim` is dist/cni/twill,
   * `socket` the host agent's --cni-socket, `subnetFile` the agent's subnet file.
   */
  readonly twill?: { readonly shim: string; readonly socket: string; readonly subnetFile: string } | undefined;
}

export interface AttachedPod {
  /** The pod's address, e.g. "10.244.3.2". */
  readonly ip: string;
  /** Its IPv6 address in a dual-stack network, e.g. "fd10:0:0:3::2". */
  readonly ipv6: string | undefined;
  /** With the subnet's prefix length, e.g. "10.244.3.2/24". */
  readonly cidr: string;
  /** The bridge's address in the host, e.g. "10.244.3.1". */
  readonly gateway: string;
  /** MAC of the pod's interface, if the plugin reported it. */
  readonly mac: string | undefined;
  /** The host end of the pod's veth, if the plugin reported it. */
  readonly hostVeth: string | undefined;
  /** The plugin's result, as printed. */
  readonly result: CniResult;
}

/** The parts of a CNI 1.0 result the demo reads. */
export interface CniResult {
  readonly cniVersion?: string;
  readonly interfaces?: readonly { readonly name: string; readonly mac?: string; readonly sandbox?: string }[];
  readonly ips?: readonly { readonly address: string; readonly gateway?: string; readonly interface?: number }[];
  readonly routes?: readonly { readonly dst: string; readonly gw?: string }[];
}

/** A plugin call failed; `cniCode` and `details` come from the plugin's error JSON when it printed one. */
export class CniPluginError extends TwillError {
  readonly cniCode: number | undefined;
  readonly details: string | undefined;
  readonly stderr: string;

  constructor(message: string, fields: { cniCode?: number | undefined; details?: string | undefined; stderr: string }) {
    super('ECNI_PLUGIN', message);
    this.cniCode = fields.cniCode;
    this.details = fields.details;
    this.stderr = fields.stderr;
  }
}

/** Which reference plugins are missing (or not executable) in `cniPath`. */
export function missingReferencePlugins(cniPath = REFERENCE_CNI_DIR): string[] {
  return REFERENCE_PLUGINS.filter((p) => {
    try {
      accessSync(join(cniPath, p), fsc.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}


/**
 * The bridge config flannel's CNI plugin delegates to for this subnet.env: bridge `cni0` as the
 * pods' gateway, masquerading only when the agent does not (`ipMasq = !FLANNEL_IPMASQ`), the
 * overlay MTU, hairpin mode, and host-local addresses from the host's subnet with one route per
 * overlay network.
 */
export function bridgeConfig(pod: PodAttachment): Record<string, unknown> {
  const env = pod.subnetEnv;
  const ranges: { subnet: string }[][] = [[{ subnet: networkPrefix(env.subnet, 'subnet') }]];
  const routes: { dst: string }[] = [{ dst: env.network }];
  if (env.ipv6Subnet !== undefined && env.ipv6Network !== undefined) {
    ranges.push([{ subnet: networkPrefix(env.ipv6Subnet, 'subnet') }]);
    routes.push({ dst: env.ipv6Network });
  }
  return {
    cniVersion: REFERENCE_CNI_VERSION,
    name: pod.networkName ?? 'twill',
    type: 'bridge',
    bridge: pod.bridge ?? 'cni0',
    isGateway: true,
    ...(pod.isDefaultGateway === true && { isDefaultGateway: true }),
    ipMasq: !env.ipMasq,
    mtu: env.mtu,
    hairpinMode: true,
    ipam: { type: 'host-local', ranges, routes, dataDir: pod.dataDir },
  };
}

/** Twill's plugin config for the same pod: it reads the subnet file itself and does its own IPAM. */
export function twillConfig(pod: PodAttachment, subnetFile: string): Record<string, unknown> {
  return {
    cniVersion: '1.1.0',
    name: pod.networkName ?? 'twill',
    type: 'twill',
    subnetFile,
    dataDir: pod.dataDir,
    bridge: pod.bridge ?? 'cni0',
    isDefaultGateway: pod.isDefaultGateway === true,
    hairpinMode: true,
  };
}

async function callBridge(command: 'ADD' | 'DEL', pod: PodAttachment, withNetns: boolean): Promise<CommandResult> {
  const cniPath = pod.cniPath ?? REFERENCE_CNI_DIR;
  const twill = pod.twill;
  const plugin = twill ? twill.shim : join(cniPath, 'bridge');
  return runCommand('ip', ['netns', 'exec', pod.hostNetns, plugin], {
    input: JSON.stringify(twill ? twillConfig(pod, twill.subnetFile) : bridgeConfig(pod)),
    timeoutMs: pod.timeoutMs ?? 30_000,
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: withNetns ? pod.podNetnsPath : undefined,
      CNI_IFNAME: pod.ifname ?? 'eth0',
      CNI_PATH: cniPath,
      CNI_ARGS: undefined,
      TWILL_CNI_SOCKET: twill?.socket,
    },
  });
}

function pluginError(command: 'ADD' | 'DEL', pod: PodAttachment, r: CommandResult): CniPluginError {
  // The Go plugins print their error JSON on stdout ({code, msg, details}), as libcni expects.
  let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch { /* not JSON */ }
  const what = `CNI ${command} of ${pod.containerId} in ${pod.hostNetns}`;
  if (parsed && typeof parsed.msg === 'string') {
    const details = typeof parsed.details === 'string' && parsed.details !== '' ? parsed.details : undefined;
    const code = typeof parsed.code === 'number' ? parsed.code : undefined;
    return new CniPluginError(`${what} failed: ${parsed.msg}${details ? `: ${details}` : ''}${code === undefined ? '' : ` (CNI error ${code})`}`,
      { cniCode: code, details, stderr: r.stderr });
  }
  return new CniPluginError(`${what} failed: ${describeFailure(r)}`, { stderr: r.stderr });
}

/**
 * CNI ADD: creates the pod's veth (the pod end is `ifname`), the bridge if needed, an address
 * from the host's subnet and the pod's route to the overlay network. Throws CniPluginError. A
 * failed ADD may leave an address reserved: call detachPod anyway, as a runtime would.
 */
export async function attachPod(pod: PodAttachment): Promise<AttachedPod> {
  const r = await callBridge('ADD', pod, true);
  if (r.code !== 0) throw pluginError('ADD', pod, r);
  let result: CniResult;
  try {
    result = JSON.parse(r.stdout) as CniResult;
  } catch {
    throw new CniPluginError(`CNI ADD of ${pod.containerId} in ${pod.hostNetns}: the result is not JSON: ${r.stdout.slice(0, 200)}`, { stderr: r.stderr });
  }
  const v4 = (result.ips ?? []).find((i) => !i.address.includes(':'));
  if (!v4) throw new CniPluginError(`CNI ADD of ${pod.containerId} in ${pod.hostNetns}: the result holds no IPv4 address: ${r.stdout.slice(0, 300)}`, { stderr: r.stderr });
  const ip = v4.address.split('/')[0]!;
  const v6 = (result.ips ?? []).find((i) => i.address.includes(':'));
  const ifname = pod.ifname ?? 'eth0';
  const interfaces = result.interfaces ?? [];
  const podIf = interfaces.find((i) => i.name === ifname && i.sandbox !== undefined && i.sandbox !== '');
  const hostIf = interfaces.find((i) => (i.sandbox === undefined || i.sandbox === '') && i.name !== (pod.bridge ?? 'cni0'));
  return {
    ip,
    ipv6: v6?.address.split('/')[0],
    cidr: v4.address,
    // FLANNEL_SUBNET is the gateway's own address (the subnet's first), which isGateway puts on the bridge.
    gateway: v4.gateway ?? pod.subnetEnv.subnet.split('/')[0]!,
    mac: podIf?.mac,
    hostVeth: hostIf?.name,
    result,
  };
}

/**
 * CNI DEL with the same config: removes the pod's veth (when its namespace still exists), its
 * masquerade rules and its address reservation. Missing pieces are fine (DEL is idempotent); a
 * host namespace that is gone leaves nothing to clean, so that is a no-op too.
 */
export async function detachPod(pod: PodAttachment): Promise<void> {
  if (!existsSync(`/run/netns/${pod.hostNetns}`)) return;
  const r = await callBridge('DEL', pod, existsSync(pod.podNetnsPath));
  if (r.code !== 0) throw pluginError('DEL', pod, r);
}
