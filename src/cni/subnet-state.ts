import { readFileSync } from 'node:fs';
import { networkPrefix, parseCidr } from '../core/ip.js';
import { parseSubnetEnv } from '../core/subnet-env.js';
import { CniCode, CniError } from './spec/errors.js';

/** What the agent's subnet file tells the plugin about this host's lease. */
export interface SubnetState {
  /** The cluster network, e.g. "10.244.0.0/16". */
  readonly network: string;
  /** This host's lease, e.g. "10.244.3.0/24". */
  readonly subnet: string;
  /** The bridge's address and the pods' gateway: the lease's first address ("10.244.3.1"). */
  readonly gateway: string;
  /** The gateway with the lease's prefix length ("10.244.3.1/24"), as the bridge holds it. */
  readonly gatewayCidr: string;
  readonly mtu: number;
  /** FLANNEL_IPMASQ: the agent masquerades, so the plugin need not. */
  readonly agentMasquerades: boolean;
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
    const env = parseSubnetEnv(text, file);
    const gw = parseCidr(env.subnet, 'FLANNEL_SUBNET');
    return {
      network: env.network,
      subnet: networkPrefix(env.subnet, 'FLANNEL_SUBNET'),
      gateway: gw.address.text,
      gatewayCidr: env.subnet,
      mtu: env.mtu,
      agentMasquerades: env.ipMasq,
    };
  } catch (err) {
    throw new CniError(CniCode.AGENT_STATE, `subnet file ${file} is not usable: ${(err as Error).message}`, undefined, { cause: err });
  }
}
