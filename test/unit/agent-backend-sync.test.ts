/**
 * The agent end to end without root: twilld's Agent with the in-memory store (MemoryStore), the
 * real host-gw backend and the in-memory kernel (FakeNetlink). A lease written to the store
 * becomes a route in the kernel and leaves with it; a hostile lease becomes none and is counted
 * (agent-lease-sync.test.ts covers the lease screen and the sync loop with a recording backend;
 * test/integration/agent-*.test.ts run twilld with etcd on real namespaces).
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, type AgentDeps } from '../../src/agent/agent.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { writeSubnetFile } from '../../src/agent/subnet-file.js';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { subnetEnvFromLease } from '../../src/core/subnet-env.js';
import { RTPROT_TWILL } from '../../src/netlink/index.js';
import type { LeaseRecord } from '../../src/store/index.js';
import { MemoryStore } from '../fakes/memory-store.js';
import { FakeNetlink } from '../fakes/netlink.js';
import { CleanupRegistry, tempDir } from '../helpers/cleanup.js';
import { waitFor } from '../helpers/wait.js';

const NETWORK = '10.244.0.0/16';
const rec = (publicIp: string): LeaseRecord => ({ publicIp, publicIpv6: null, backendType: 'host-gw', backendData: null });

const dirs = new CleanupRegistry('agent state dirs');
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  await dirs.runAll();
});

/** twilld on a host with eth0 198.18.0.1/24, whose subnet file says 10.244.1.0/24, running until the test ends. */
async function startAgent(
  masquerade: AgentDeps['masquerade'] = { apply: () => Promise.resolve(), remove: () => Promise.resolve() },
): Promise<{ agent: Agent; store: MemoryStore; nl: FakeNetlink; metrics: AgentMetrics; eth0: number; done: Promise<void>; stop: () => void }> {
  const nl = new FakeNetlink();
  const eth0 = nl.kernel.addUplink('eth0', '198.18.0.1/24').index;
  const store = new MemoryStore();
  await store.putNetworkConfig(JSON.stringify({ Network: NETWORK, Backend: { Type: 'host-gw' } }));
  const subnetFile = join(tempDir('agent', dirs), 'subnet.env');
  await writeSubnetFile(subnetFile, subnetEnvFromLease(NETWORK, '10.244.1.0/24', 1500, false));
  const metrics = new AgentMetrics();
  const agent = new Agent({
    settings: { iface: ['eth0'], publicIp: undefined, subnetFile, leaseTtlSeconds: 60, ipMasq: false, resyncIntervalMs: 3_600_000, syncRetryInitialMs: 5 },
    masquerade,
    store, netlink: nl, registry: registerBuiltins(), log: pino({ level: 'silent' }), metrics,
  });
  const ac = new AbortController();
  const done = agent.run(ac.signal);
  stops.push(async () => { ac.abort(); await done; });
  await waitFor(() => agent.health().ready, { what: 'the agent ready on its subnet', timeoutMs: 5000 });
  return { agent, store, nl, metrics, eth0, done, stop: () => ac.abort() };
}

async function twillRoutes(nl: FakeNetlink): Promise<string[]> {
  return (await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL })).map((r) => `${r.dst} via ${r.gateway ?? '-'}`).sort();
}

const metric = async (m: AgentMetrics, line: string): Promise<number | undefined> => {
  const found = (await m.registry.metrics()).split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
};

describe('agent lease watch -> host-gw -> kernel', () => {
  it('routes a lease that appears, unroutes it when it is deleted, and never routes a hostile one', async () => {
    const { agent, store, nl, metrics } = await startAgent();
    expect(agent.health().subnet).toBe('10.244.1.0/24');
    expect(await twillRoutes(nl)).toEqual([]);

    store.put('10.244.2.0-24', rec('198.18.0.2'));
    await waitFor(async () => (await twillRoutes(nl)).length > 0, { what: 'the route to host 2' });
    expect(await twillRoutes(nl)).toEqual(['10.244.2.0/24 via 198.18.0.2']);

    store.put('10.99.5.0-24', rec('198.18.0.5'));   // outside the cluster network: screened out
    store.put('10.244.6.0-24', rec('198.18.7.6'));  // a PublicIP off eth0's segment: host-gw skips it
    store.put('10.244.3.0-24', rec('198.18.0.3'));  // a real host, written last
    await waitFor(async () => (await twillRoutes(nl)).length === 2, { what: 'the route to host 3' });
    expect(await twillRoutes(nl)).toEqual(['10.244.2.0/24 via 198.18.0.2', '10.244.3.0/24 via 198.18.0.3']);
    expect(await metric(metrics, 'twill_leases_rejected_total{reason="outside_network"}')).toBe(1);
    expect(await metric(metrics, 'twill_backend_entries_skipped_total{reason="invalid"}')).toBe(1);

    store.remove('10.244.2.0-24');
    await waitFor(async () => (await twillRoutes(nl)).length === 1, { what: 'the route to host 2 gone' });
    expect(await twillRoutes(nl)).toEqual(['10.244.3.0/24 via 198.18.0.3']);
    // Nothing outside the desired set was ever written: no route to the hostile subnets, ever.
    expect(nl.writeLog().filter((w) => w.includes('10.99.') || w.includes('10.244.6.'))).toEqual([]);
  });

  it('without --ip-masq removes a stale masquerading table beside the start, and waits for it before it returns', async () => {
    let removals = 0;
    let finishRemoval!: () => void;
    const removal = new Promise<void>((resolve) => { finishRemoval = resolve; });
    const { agent, store, nl, done, stop } = await startAgent({
      apply: () => Promise.reject(new Error('apply must not run without --ip-masq')),
      remove: () => { removals++; return removal; },
    });
    // Ready, and syncing leases, while nft is still running.
    expect(removals).toBe(1);
    store.put('10.244.2.0-24', rec('198.18.0.2'));
    await waitFor(async () => (await twillRoutes(nl)).length > 0, { what: 'the route to host 2 while the removal runs' });
    expect(agent.health().ready).toBe(true);

    stop();
    let returned = false;
    void done.then(() => { returned = true; });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(returned).toBe(false);
    finishRemoval();
    await done;
    expect(returned).toBe(true);
    expect(removals).toBe(1);
  });
});
