import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from '../test/helpers/cluster.js';
import { startAgent, type TestAgent } from '../test/helpers/twilld.js';

/**
 * How the vxlan benchmarks start twilld on host i of their cluster: files under `dir/host<i>`,
 * the agent stored in `agents[i]` (so the caller's cleanup stops it), and with `profileDir` (their
 * --profile DIR) V8 CPU profiles of the agents, to open in Chrome DevTools. BENCH_AGENT_ARGS adds
 * twilld flags, BENCH_AGENT_NODE_ARGS Node flags (V8 heap settings, say).
 */
export function agentStarter(cluster: Cluster, etcdUrl: string, dir: string, agents: TestAgent[], profileDir: string | undefined): (i: number) => Promise<TestAgent> {
  return async (i) => {
    const hostDir = join(dir, `host${i}`);
    mkdirSync(hostDir, { recursive: true });
    const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    nodeArgs.push(...(process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''));
    // BENCH_AGENT_ARGS: more twilld flags, for a comparison ("--no-metrics", say).
    const extra = (process.env.BENCH_AGENT_ARGS ?? '').split(' ').filter((a) => a !== '');
    const agent = await startAgent(cluster.hosts[i]!, { etcd: etcdUrl, dir: hostDir, args: ['--iface', 'eth0', '--log-level', process.env.BENCH_AGENT_LOG ?? 'info', ...extra], nodeArgs });
    agents[i] = agent;
    return agent;
  };
}
