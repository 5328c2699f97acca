/**
 * The agent's lease loop against an in-memory store and a recording backend (no root, no etcd):
 * what reaches the backend when a hostile writer adds leases (items 1 and 4 of issue 13), how the
 * host answers an overwrite or a takeover of its own key (item 5), and when /healthz and /readyz
 * turn (item 16).
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Network, RemoteLease, SyncReport } from '../../src/backends/backend.js';
import { createLogger } from '../../src/core/logger.js';
import { HealthState } from '../../src/agent/health.js';
import { LeaseKeeper } from '../../src/agent/lease-keeper.js';
import { LeaseSync, SYNC_FAILURES_UNHEALTHY } from '../../src/agent/lease-sync.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { parseNetworkConfig } from '../../src/ipam/network-config.js';
import { registerBuiltins } from '../../src/backends/builtins.js';
import type { LeaseRecord } from '../../src/store/index.js';
import { MemoryStore } from '../fakes/memory-store.js';
import { waitFor } from '../helpers/wait.js';

const config = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'alloc' } }, registerBuiltins().parseOptions);
const ext = { name: 'eth0', index: 2, mtu: 1500, address: '198.18.0.1', publicIp: '198.18.0.1' };
const rec = (publicIp: string): LeaseRecord => ({ publicIp, publicIpv6: null, backendType: 'alloc', backendData: null });

/** A backend that records every desired set and fails while `failing` is set. */
class RecordingNetwork implements Network {
  readonly leaseData = null;
  readonly mtu = 1500;
  readonly synced: (readonly RemoteLease[])[] = [];
  failing = false;
  start(): Promise<void> { return Promise.resolve(); }
  sync(desired: readonly RemoteLease[]): Promise<SyncReport> {
    if (this.failing) return Promise.reject(new Error('netlink says no'));
    this.synced.push(desired);
    return Promise.resolve({ changes: desired.length, skipped: [] });
  }
  run(): Promise<void> { return Promise.resolve(); }
  get last(): string[] { return (this.synced.at(-1) ?? []).map((l) => `${l.subnet} ${l.publicIp}`); }
}

interface Rig {
  store: MemoryStore; network: RecordingNetwork; keeper: LeaseKeeper; health: HealthState; metrics: AgentMetrics;
  logs: { msg: string; level: number }[]; stop: AbortController; done: Promise<void>;
}

const running: Rig[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) { r.stop.abort(); await r.done; }
});

async function start(seed: (s: MemoryStore) => void = () => undefined, ttlSeconds = 60): Promise<Rig> {
  const store = new MemoryStore();
  seed(store);
  const logs: { msg: string; level: number }[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { for (const l of chunk.toString().split('\n')) if (l) logs.push(JSON.parse(l) as { msg: string; level: number }); cb(); } });
  const log = createLogger({ level: 'debug', destination: sink });
  const metrics = new AgentMetrics();
  const health = new HealthState(metrics);
  const network = new RecordingNetwork();
  const keeper = new LeaseKeeper({ store, config, record: rec(ext.publicIp), ttlSeconds, previousSubnet: '10.244.1.0/24', log, metrics });
  health.probe('etcd_unreachable', () => keeper.renewalOverdue());
  const stop = new AbortController();
  const lease = await keeper.acquire(stop.signal);
  health.leaseHeld(lease!.subnet);
  const sync = new LeaseSync({ store, network, backendType: 'alloc', keeper, config, ext, extCidrs: ['198.18.0.1/24'], health, log, metrics, retryInitialMs: 5 });
  keeper.on('lease', (l) => { health.leaseHeld(l.subnet); sync.resync(); });
  keeper.on('lost', () => health.leaseHeld(undefined));
  const done = sync.run(stop.signal);
  const rig = { store, network, keeper, health, metrics, logs, stop, done };
  running.push(rig);
  return rig;
}

const metric = async (m: AgentMetrics, line: string): Promise<number | undefined> => {
  const found = (await m.registry.metrics()).split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
};

describe('LeaseSync with a hostile writer', () => {
  it('hands the backend only leases that cannot steer traffic, and counts each refusal once', async () => {
    const r = await start((s) => {
      s.put('10.244.2.0-24', rec('198.18.0.2'), '1');
      s.put('10.244.3.0-24', rec('198.18.0.3'), '1');
    });
    await waitFor(() => r.health.report().ready, { what: 'ready after the first sync' });
    expect(r.network.last).toEqual(['10.244.2.0/24 198.18.0.2', '10.244.3.0/24 198.18.0.3']);

    r.store.put('10.244.2.128-25', rec('198.18.0.66'));              // part of host 2's /24
    r.store.put('10.244.1.0-24&fc00:0:0:1::-64', rec('198.18.0.66')); // this host's own subnet
    r.store.put('10.244.0.0-16', rec('198.18.0.66'));                // the whole network
    r.store.put('10.244.3.0-24&fc00:0:0:3::-64', rec('198.18.0.66')); // a younger key for host 3's
    r.store.put('10.244.9.0-24', rec('255.255.255.255'));             // broadcast endpoint
    r.store.put('10.244.10.0-24', rec('198.18.0.1'));                 // this host's own address
    r.store.put('10.244.4.0-24', rec('198.18.0.4'));                  // a real new host
    await waitFor(() => r.network.last.includes('10.244.4.0/24 198.18.0.4'), { what: 'the new host synced' });
    expect(r.network.last).toEqual(['10.244.2.0/24 198.18.0.2', '10.244.3.0/24 198.18.0.3', '10.244.4.0/24 198.18.0.4']);

    expect(await metric(r.metrics, 'twill_leases_rejected_total{reason="wrong_prefix_length"}')).toBe(2);
    expect(await metric(r.metrics, 'twill_leases_rejected_total{reason="overlaps_own_subnet"}')).toBe(1);
    expect(await metric(r.metrics, 'twill_leases_rejected_total{reason="overlaps_older_lease"}')).toBe(1);
    expect(await metric(r.metrics, 'twill_leases_rejected_total{reason="public_ip_unusable"}')).toBe(1);
    expect(await metric(r.metrics, 'twill_leases_rejected_total{reason="public_ip_is_local"}')).toBe(1);
    const refusals = r.logs.filter((l) => l.msg.startsWith('lease not routed'));
    expect(refusals).toHaveLength(6);
    expect(r.logs.find((l) => l.msg.includes('already held by an older lease'))).toMatchObject({
      key: '/coreos.com/network/subnets/10.244.3.0-24&fc00:0:0:3::-64', conflictsWith: '/coreos.com/network/subnets/10.244.3.0-24',
    });
    // A later sync (another lease arrives) neither logs nor counts the same refusals again.
    r.store.put('10.244.5.0-24', rec('198.18.0.5'), '1');
    await waitFor(() => r.network.last.includes('10.244.5.0/24 198.18.0.5'), { what: 'host 5 synced' });
    expect(r.logs.filter((l) => l.msg.startsWith('lease not routed'))).toHaveLength(6);
    expect(await metric(r.metrics, 'twill_leases_rejected_total{reason="wrong_prefix_length"}')).toBe(2);
  });

  it('restores its own record when a writer changes it but the key stays bound to its etcd lease', async () => {
    const r = await start();
    await waitFor(() => r.health.report().ready, { what: 'ready' });
    const own = r.keeper.lease!;
    r.store.put('10.244.1.0-24', rec('198.18.0.66'), own.etcdLeaseId);
    await waitFor(() => JSON.parse(r.store.raw('10.244.1.0-24')!.value).PublicIP === '198.18.0.1', { what: 'record restored' });
    expect(r.store.raw('10.244.1.0-24')!.lease).toBe(own.etcdLeaseId);
    expect(r.keeper.lease?.subnet).toBe('10.244.1.0/24');
    expect(await metric(r.metrics, 'twill_own_lease_conflicts_total{action="restored"}')).toBe(1);
    expect(r.logs.some((l) => l.level === 50 && l.msg.includes('overwrote this host\'s lease record') && l.msg.includes('restored it'))).toBe(true);
  });

  it('gives up a subnet whose key another writer took over, and acquires another', async () => {
    const r = await start();
    await waitFor(() => r.health.report().ready, { what: 'ready' });
    // Re-put without a lease: now a reservation of somebody else's.
    r.store.put('10.244.1.0-24', rec('198.18.0.66'));
    await waitFor(() => r.keeper.lease !== undefined && r.keeper.lease.subnet !== '10.244.1.0/24', { what: 'a new subnet' });
    expect(JSON.parse(r.store.raw('10.244.1.0-24')!.value).PublicIP).toBe('198.18.0.66');
    expect(await metric(r.metrics, 'twill_own_lease_conflicts_total{action="reacquired"}')).toBe(1);
    // The new subnet is ready only after a sync that knows it; the old one is someone else's now.
    await waitFor(() => r.health.report().ready, { what: 'ready on the new subnet' });
    expect(r.health.report().subnet).toBe(r.keeper.lease!.subnet);
    expect(r.network.last).toEqual(['10.244.1.0/24 198.18.0.66']);
  });

  it('turns unhealthy after repeated sync failures, retries by itself, and recovers', async () => {
    const r = await start((s) => s.put('10.244.2.0-24', rec('198.18.0.2'), '1'));
    await waitFor(() => r.health.report().ready, { what: 'ready' });
    r.network.failing = true;
    r.store.put('10.244.3.0-24', rec('198.18.0.3'), '1');
    // No further change arrives: the retries alone must reach the threshold.
    await waitFor(() => !r.health.report().healthy, { what: 'unhealthy', timeoutMs: 5000 });
    const report = r.health.report();
    expect(report.ready).toBe(false);
    expect(report.problems).toEqual([{ reason: 'backend_sync_failing', detail: expect.stringMatching(/^\d+ syncs in a row failed, the last with: netlink says no$/) as string }]);
    expect(Number(/^(\d+)/.exec(report.problems[0]!.detail)![1])).toBeGreaterThanOrEqual(SYNC_FAILURES_UNHEALTHY);
    expect(await metric(r.metrics, 'twill_health_problem{reason="backend_sync_failing"}')).toBe(1);
    expect(await metric(r.metrics, 'twill_ready')).toBe(0);
    r.network.failing = false;
    await waitFor(() => r.health.report().healthy && r.health.report().ready, { what: 'recovered', timeoutMs: 5000 });
    expect(r.network.last).toEqual(['10.244.2.0/24 198.18.0.2', '10.244.3.0/24 198.18.0.3']);
    expect(await metric(r.metrics, 'twill_health_problem{reason="backend_sync_failing"}')).toBe(0);
    expect(await metric(r.metrics, 'twill_ready')).toBe(1);
  });

  it('turns unhealthy when etcd stays unreachable past the renewal deadline', async () => {
    const r = await start(undefined, 3); // renewals every second
    await waitFor(() => r.health.report().ready, { what: 'ready' });
    const lease = r.keeper.lease!;
    const deadline = lease.expiresAt! - 1000; // a third of the TTL before expiry
    expect(r.keeper.renewalOverdue(deadline + 1)).toBeUndefined(); // renewals work: nothing overdue
    r.store.down = true;
    // One failed renewal: etcd is failing, but the deadline is still ahead.
    const stop = new AbortController();
    const renewing = r.keeper.run(stop.signal);
    await waitFor(() => r.logs.some((l) => l.msg === 'lease renewal failed, will retry'), { what: 'a failed renewal', timeoutMs: 4000 });
    stop.abort();
    await renewing;
    expect(r.keeper.renewalOverdue(deadline - 1)).toBeUndefined();
    expect(r.keeper.renewalOverdue(deadline + 1)).toMatch(/^etcd unreachable since .*; the lease had to be renewed by /);
  });
});
