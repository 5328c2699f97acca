import type { PodIpam, StrayHandler } from '../ipam/pod-ipam.js';
import type { Netlink } from '../netlink/index.js';
import type { PodMasquerade } from '../nftables/index.js';
import type { TwillNetConf } from './config.js';
import type { NetnsIdentity } from './pod-netns.js';
import type { CniEnv } from './spec/env.js';

/**
 * What a command works with. The standalone plugin builds one per process; the agent keeps one
 * (warm netlink socket, one masquerade runner) for every call it serves over its socket.
 */
export interface PluginContext {
  /** Netlink in the host's namespace: where the bridge and the host ends of the veths live. */
  readonly hostNetlink: Netlink;
  /** The namespace hostNetlink lives in; a pod's CNI_NETNS must never be it. */
  readonly hostNetns: NetnsIdentity;
  /** Opens netlink inside a pod's namespace; the caller closes it. */
  readonly openNetlink: (netnsPath: string) => Netlink;
  readonly masquerade: PodMasquerade;
  /**
   * The allocator for a network (dataDir + name); `subnets` are the host's leases when known,
   * `onStray` hears of data directory entries it skipped.
   */
  readonly ipam: (conf: TwillNetConf, subnets: LeaseSubnets | undefined, onStray?: StrayHandler) => PodIpam;
}

/** The host's leased subnets as network prefixes ("10.244.3.0/24", "fc00:0:0:3::/64"); either may be absent. */
export interface LeaseSubnets {
  readonly ipv4?: string | undefined;
  readonly ipv6?: string | undefined;
}

/** One call: its CNI_* parameters and its parsed config. */
export interface CniRequest {
  readonly env: CniEnv;
  readonly conf: TwillNetConf;
  /** Aborted when the call's deadline passed: an ADD stops at its next step and undoes itself. */
  readonly signal?: AbortSignal | undefined;
  /** Notes for the log (a stray file skipped, an interface left alone); never on stdout. */
  readonly warn: (message: string) => void;
}
