import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// The agent's Prometheus metrics (flannel has none, flannel.md §6 #14). They live on a registry
// of their own rather than prom-client's global one, so tests can build as many agents as they
// like and nothing another module registers globally leaks into /metrics.

/** 1 ms .. 10 s: a sync of a few routes takes about a millisecond, thousands take seconds. */
const SYNC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// Label values must come from a small fixed set (an operation name, not an error message): each
// distinct value is a new time series kept forever. Anything that does not look like a name is
// counted as "other" instead of throwing, because these calls sit on error paths.
const LABEL_VALUE = /^[a-z][a-z0-9_.-]{0,47}$/;

function labelValue(value: string): string {
  return LABEL_VALUE.test(value) ? value : 'other';
}

export class AgentMetrics {
  /** Serve with `registry.metrics()` and `registry.contentType`. */
  readonly registry = new Registry();

  readonly #leasesKnown = new Gauge({
    name: 'twill_leases_known',
    help: 'Subnet leases the agent knows: the remote leases plus its own.',
    registers: [this.registry],
  });

  readonly #leaseRenewals = new Counter({
    name: 'twill_lease_renewals_total',
    help: 'Renewals of this node\'s subnet lease, by result (ok or error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly #etcdErrors = new Counter({
    name: 'twill_etcd_errors_total',
    help: 'Failed etcd operations, by operation.',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });

  readonly #watchRestarts = new Counter({
    name: 'twill_watch_restarts_total',
    help: 'Restarts of the lease watch, by reason (e.g. disconnected, compacted).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly #syncDuration = new Histogram({
    name: 'twill_sync_duration_seconds',
    help: 'Time a backend took to bring the kernel in line with the known leases.',
    labelNames: ['backend'] as const,
    buckets: SYNC_BUCKETS,
    registers: [this.registry],
  });

  constructor() {
    // Both renewal results exist from the start, so rate() and alerts see a 0 rather than no data.
    this.#leaseRenewals.inc({ result: 'ok' }, 0);
    this.#leaseRenewals.inc({ result: 'error' }, 0);
    // process_* and nodejs_* (CPU, memory, file descriptors, event-loop lag, GC), unprefixed as
    // every Node exporter names them, so stock dashboards work.
    collectDefaultMetrics({ register: this.registry });
  }

  setLeasesKnown(n: number): void {
    this.#leasesKnown.set(n);
  }

  leaseRenewed(ok: boolean): void {
    this.#leaseRenewals.inc({ result: ok ? 'ok' : 'error' });
  }

  /** `op`: a fixed operation name such as "get", "put", "txn", "watch", "grant". */
  etcdError(op: string): void {
    this.#etcdErrors.inc({ op: labelValue(op) });
  }

  /** `reason`: a fixed reason such as "disconnected" or "compacted". */
  watchRestarted(reason: string): void {
    this.#watchRestarts.inc({ reason: labelValue(reason) });
  }

  /** `backend`: vxlan, ipip, host-gw or bgp. */
  observeSync(backend: string, seconds: number): void {
    this.#syncDuration.observe({ backend: labelValue(backend) }, seconds);
  }
}
