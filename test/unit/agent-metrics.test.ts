import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/agent/metrics.js';

/** `# TYPE <name> <type>` lines of an exposition, as a map. */
function types(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

describe('AgentMetrics', () => {
  it('exposes exactly the twill_ metrics with their types, plus the default process metrics', async () => {
    const text = await new AgentMetrics().registry.metrics();
    const all = types(text);
    const twill = [...all].filter(([name]) => name.startsWith('twill_'));
    expect(new Map(twill)).toEqual(new Map([
      ['twill_leases_known', 'gauge'],
      ['twill_lease_renewals_total', 'counter'],
      ['twill_etcd_errors_total', 'counter'],
      ['twill_watch_restarts_total', 'counter'],
      ['twill_sync_duration_seconds', 'histogram'],
      ['twill_leases_rejected_total', 'counter'],
      ['twill_backend_entries_skipped_total', 'counter'],
      ['twill_own_lease_conflicts_total', 'counter'],
      ['twill_health_problem', 'gauge'],
      ['twill_ready', 'gauge'],
    ]));
    expect(all.get('process_cpu_seconds_total')).toBe('counter');
    expect(all.get('process_resident_memory_bytes')).toBe('gauge');
    expect(all.has('nodejs_eventloop_lag_seconds')).toBe(true);
    // Both renewal results exist before the first renewal.
    expect(text).toContain('twill_lease_renewals_total{result="ok"} 0');
    expect(text).toContain('twill_lease_renewals_total{result="error"} 0');
    // Refusals and conflicts exist at 0 before the first one, so increase() sees the first.
    expect(text).toContain('twill_leases_rejected_total{reason="overlaps_older_lease"} 0');
    expect(text).toContain('twill_leases_rejected_total{reason="public_ip_unusable"} 0');
    expect(text).toContain('twill_backend_entries_skipped_total{reason="foreign_route"} 0');
    expect(text).toContain('twill_own_lease_conflicts_total{action="reacquired"} 0');
  });

  it('records through its typed methods', async () => {
    const m = new AgentMetrics();
    m.setLeasesKnown(7);
    m.leaseRenewed(true);
    m.leaseRenewed(true);
    m.leaseRenewed(false);
    m.etcdError('put');
    m.etcdError('put');
    m.watchRestarted('compacted');
    m.observeSync('vxlan', 0.003);
    m.observeSync('vxlan', 4);
    const text = await m.registry.metrics();
    expect(text).toContain('twill_leases_known 7');
    expect(text).toContain('twill_lease_renewals_total{result="ok"} 2');
    expect(text).toContain('twill_lease_renewals_total{result="error"} 1');
    expect(text).toContain('twill_etcd_errors_total{op="put"} 2');
    expect(text).toContain('twill_watch_restarts_total{reason="compacted"} 1');
    expect(text).toContain('twill_sync_duration_seconds_bucket{le="0.001",backend="vxlan"} 0');
    expect(text).toContain('twill_sync_duration_seconds_bucket{le="0.005",backend="vxlan"} 1');
    expect(text).toContain('twill_sync_duration_seconds_bucket{le="10",backend="vxlan"} 2');
    expect(text).toContain('twill_sync_duration_seconds_count{backend="vxlan"} 2');
  });

  it('counts refusals by reason and reads the health gauges from the agent at every scrape', async () => {
    const m = new AgentMetrics();
    m.leaseRejected('overlaps_older_lease');
    m.leaseRejected('overlaps_older_lease');
    m.leaseRejected('public_ip_unusable');
    m.entrySkipped('foreign_route');
    m.ownLeaseConflict('restored');
    let state: { problems: string[]; ready: boolean } = { problems: [], ready: false };
    m.setHealthSource(() => state);
    let text = await m.registry.metrics();
    expect(text).toContain('twill_leases_rejected_total{reason="overlaps_older_lease"} 2');
    expect(text).toContain('twill_leases_rejected_total{reason="public_ip_unusable"} 1');
    expect(text).toContain('twill_backend_entries_skipped_total{reason="foreign_route"} 1');
    expect(text).toContain('twill_own_lease_conflicts_total{action="restored"} 1');
    expect(text).toContain('twill_health_problem{reason="etcd_unreachable"} 0');
    expect(text).toContain('twill_ready 0');
    state = { problems: ['etcd_unreachable'], ready: false };
    text = await m.registry.metrics();
    expect(text).toContain('twill_health_problem{reason="etcd_unreachable"} 1');
    expect(text).toContain('twill_health_problem{reason="config_refused"} 0');
    state = { problems: [], ready: true };
    text = await m.registry.metrics();
    expect(text).toContain('twill_health_problem{reason="etcd_unreachable"} 0');
    expect(text).toContain('twill_ready 1');
  });

  it('keeps label values to names (an error message would make a series per message)', async () => {
    const m = new AgentMetrics();
    m.etcdError('connect ECONNREFUSED 127.0.0.1:2379');
    m.watchRestarted('');
    const text = await m.registry.metrics();
    expect(text).toContain('twill_etcd_errors_total{op="other"} 1');
    expect(text).toContain('twill_watch_restarts_total{reason="other"} 1');
  });

  it('keeps each instance separate from the others and from the global registry', async () => {
    const a = new AgentMetrics();
    const b = new AgentMetrics();
    a.setLeasesKnown(3);
    expect(await b.registry.metrics()).toContain('twill_leases_known 0');
    const { register } = await import('prom-client');
    expect(register.getSingleMetric('twill_leases_known')).toBeUndefined();
  });
});
