/**
 * Pods spread over test hosts, and the check a user runs first: does every pod reach every other.
 */
import { run } from './exec.js';
import type { TestNetns } from './netns.js';
import type { TestAgent } from './twilld.js';

export interface MeshPod { readonly ns: TestNetns; readonly host: number; readonly ip: string }

/** Pings every pod from every other (2 echoes each, all pairs at once); returns the pairs that failed. */
export async function pingAll(pods: readonly MeshPod[]): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(pods.flatMap((from) => pods.filter((to) => to !== from).map(async (to) => {
    const r = await run('ip', ['netns', 'exec', from.ns.name, 'ping', '-c', '2', '-i', '0.2', '-W', '2', to.ip], { allowFailure: true });
    if (r.code !== 0) failures.push(`${from.ip} (host ${from.host}) -> ${to.ip} (host ${to.host})`);
  })));
  return failures;
}

/** The network address of an agent's subnet file's FLANNEL_SUBNET ("10.244.3.1/24" -> "10.244.3.0/24"). */
export function leaseSubnet(agent: TestAgent): string {
  return agent.subnetEnv()!.FLANNEL_SUBNET!.replace(/\.1\/(\d+)$/, '.0/$1');
}
