import type { PodIpam } from '../ipam/pod-ipam.js';
import type { Netlink } from '../netlink/index.js';
import type { PodMasquerade } from '../nftables/index.js';
import type { TwillNetConf } from './config.js';
import type { CniEnv } from './spec/env.js';

/**
 * What a command works with. The standalone plugin builds one per process; the agent keeps one
 * (warm netlink socket, one masquerade runner) for every call it serves over its socket.
 */
export interface PluginContext {
  /** Netlink in the host's namespace: where the bridge and the host ends of the veths live. */
  readonly hostNetlink: Netlink;
  /** Opens netlink inside a pod's namespace; the caller closes it. */
  readonly openNetlink: (netnsPath: string) => Netlink;
  readonly masquerade: PodMasquerade;
  /** The allocator for a network (dataDir + name); `subnet` is the host's lease when known. */
  readonly ipam: (conf: TwillNetConf, subnet: string | undefined) => PodIpam;
}

/** One call: its CNI_* parameters and its parsed config. */
export interface CniRequest {
  readonly env: CniEnv;
  readonly conf: TwillNetConf;
}
