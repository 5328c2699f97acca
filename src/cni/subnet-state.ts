import { readFileSync } from 'node:fs';
import { networkPrefix, parseCidr } from '../core/ip.js';
import { hasIpv4, parseSubnetEnv } from '../core/subnet-env.js';
import { CniCode, CniError } from './spec/errors.js';

/** One address family of the host's lease. */
export interface FamilySubnet {
  readonly family: 4 | 6;
  /** The cluster network, e.g. "10.244.0.0/16" or "fc00::/48". */
  readonly network: string;
  /** This host's lease, e.g. "10.244.3.0/24" or "fc00:0:0:3::/64". */
  readonly subnet: string;
  /** The bridge's address and the pods' gateway: the lease's first address ("10.244.3.1", "fc00:0:0:3::1"). */
  readonly gateway: string;
  /** The gateway with the lease's prefix length ("10.244.3.1/24"), as the bridge holds it. */
  readonly gatewayCidr: string;
}

/**
 * What the agent's subnet file tells the plugin about this host's lease: the IPv4 part unless
 * the cluster is IPv6-only, the IPv6 part when the cluster is dual-stack or IPv6-only. At least
 * one is there.
 */
export interface SubnetState {
  readonly ipv4: FamilySubnet | undefined;
  readonly ipv6: FamilySubnet | undefined;
  /** The families present, IPv4 first (the order of a result's `ips`). */
  readonly families: readonly FamilySubnet[];
  readonly mtu: number;
  /** FLANNEL_IPMASQ: the agent masquerades, so the plugin need not. */
  readonly agentMasquerades: boolean;
}

/** The leases as the allocator takes them (PluginContext.ipam). */
export function leaseSubnets(state: SubnetState): { ipv4: string | undefined; ipv6: string | undefined } {
  return { ipv4: state.ipv4?.subnet, ipv6: state.ipv6?.subnet };
}

function familySubnet(family: 4 | 6, network: string, gatewayCidr: string, variable: string): FamilySubnet {
  const gw = parseCidr(gatewayCidr, variable);
  return { family, network, subnet: networkPrefix(gatewayCidr, variable), gateway: gw.address.text, gatewayCidr };
}

/**
 * Reads the agent's subnet.env. A missing file is the most common CNI failure in flannel
 * clusters (flannel#2253, #2232): the agent has not leased a subnet yet (or is not running), a
 * transient condition, so code 11 asks the runtime to try again later.
 */
export function readSubnetState(file: string): SubnetState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CniError(CniCode.TRY_AGAIN_LATER, `subnet file ${file} does not exist: is twilld running, and has it leased a subnet for this host?`);
    }
    throw new CniError(CniCode.IO_FAILURE, `cannot read subnet file ${file}: ${(err as Error).message}`);
  }
  try {
    const env = parseSubnetEnv(text, file, { allowIpv6Only: true });
    const ipv4 = hasIpv4(env) ? familySubnet(4, env.network, env.subnet, 'FLANNEL_SUBNET') : undefined;
    const ipv6 = env.ipv6Network !== undefined && env.ipv6Subnet !== undefined
      ? familySubnet(6, env.ipv6Network, env.ipv6Subnet, 'FLANNEL_IPV6_SUBNET') : undefined;
    return {
      ipv4,
      ipv6,
      families: [ipv4, ipv6].filter((f): f is FamilySubnet => f !== undefined),
      mtu: env.mtu,
      agentMasquerades: env.ipMasq,
    };
  } catch (err) {
    throw new CniError(CniCode.AGENT_STATE, `subnet file ${file} is not usable: ${(err as Error).message}`, undefined, { cause: err });
  }
}
