import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RoutingStatus, SkippedLease } from '../backends/backend.js';
import { LEASE_REJECT_REASONS } from './lease-screen.js';

// The agent's Prometheus metrics (flannel has none, flannel.md §6 #14). They live on a registry
// of their own rather than prom-client's global one, so tests can build as many agents as they
// like and nothing another module registers globally leaks into /metrics.

/** 1 ms .. 10 s: a sync of a few routes takes about a millisecond, thousands take seconds. */
/** The problems that make /healthz answer 503 (see health.ts). */
export const HEALTH_PROBLEMS = ['config_refused', 'etcd_unreachable', 'backend_sync_failing'] as const;
export type HealthProblem = (typeof HEALTH_PROBLEMS)[number];

/** twill_backend_entries_skipped_total's reasons: SkippedLease codes (backend.ts), and 'invalid' for a lease without one. */
const ENTRY_SKIP_REASONS = ['foreign_route', 'write_failed', 'invalid'] as const satisfies readonly (NonNullable<SkippedLease['code']> | 'invalid')[];
const OWN_LEASE_ACTIONS = ['restored', 'reacquired', 'contested'] as const;
/** How often the event-loop lag is sampled (prom-client's eventLoopMonitoringPrecision). */
const EVENT_LOOP_SAMPLE_MS = 1000;
type OwnLeaseAction = (typeof OWN_LEASE_ACTIONS)[number];

/** How long one reading of the bgp backend serves the collectors of a scrape. */
const SCRAPE_SNAPSHOT_MS = 100;

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

  readonly #leasesRejected = new Counter({
    name: 'twill_leases_rejected_total',
    help: 'Leases in etcd this host refused to route, counted when first seen, by reason (wrong_prefix_length, outside_network, overlaps_own_subnet, overlaps_older_lease, public_ip_unusable, public_ip_is_local).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly #entriesSkipped = new Counter({
    name: 'twill_backend_entries_skipped_total',
    help: 'Leases the backend could not program, counted when first seen, by reason (foreign_route: a route of another owner is in the way; write_failed: the kernel refused an entry, retried at the next resync; invalid: unusable lease data or placement).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly #ownLeaseConflicts = new Counter({
    name: 'twill_own_lease_conflicts_total',
    help: 'Another writer changed this host\'s own lease, by what the agent did (restored, reacquired) or saw (contested: an older lease holds the same subnet).',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });

  /** Read at every scrape, so the health gauges can never disagree with /healthz and /readyz. */
  #healthSource: (() => { readonly problems: readonly string[]; readonly ready: boolean }) | undefined;

  readonly #healthProblem = new Gauge({
    name: 'twill_health_problem',
    help: 'Whether a problem that makes /healthz fail is present (1) or not (0), by reason (config_refused, etcd_unreachable, backend_sync_failing).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
    collect: () => {
      const present = this.#healthSource?.().problems ?? [];
      for (const reason of HEALTH_PROBLEMS) this.#healthProblem.set({ reason }, present.includes(reason) ? 1 : 0);
    },
  });

  readonly #ready = new Gauge({
    name: 'twill_ready',
    help: 'Whether /readyz answers 200 (1): the lease is held, the subnet file written and the backend synced.',
    registers: [this.registry],
    collect: () => {
      this.#ready.set(this.#healthSource?.().ready === true ? 1 : 0);
    },
  });

  constructor() {
    // Both renewal results exist from the start, so rate() and alerts see a 0 rather than no data.
    this.#leaseRenewals.inc({ result: 'ok' }, 0);
    this.#leaseRenewals.inc({ result: 'error' }, 0);
    // The same for every refusal and conflict, so an alert on increase() sees the first one too.
    for (const reason of LEASE_REJECT_REASONS) this.#leasesRejected.inc({ reason }, 0);
    for (const reason of ENTRY_SKIP_REASONS) this.#entriesSkipped.inc({ reason }, 0);
    for (const action of OWN_LEASE_ACTIONS) this.#ownLeaseConflicts.inc({ action }, 0);
    // process_* and nodejs_* (CPU, memory, file descriptors, event-loop lag, GC), unprefixed as
    // every Node exporter names them, so stock dashboards work. The event-loop lag is sampled
    // once a second, not every 10 ms (prom-client's default): that timer alone kept an idle
    // agent at about 1 % of a core.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
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

  leaseRejected(reason: string): void {
    this.#leasesRejected.inc({ reason: labelValue(reason) });
  }

  entrySkipped(reason: string): void {
    this.#entriesSkipped.inc({ reason: labelValue(reason) });
  }

  ownLeaseConflict(action: OwnLeaseAction): void {
    this.#ownLeaseConflicts.inc({ action });
  }

  /** Where twill_health_problem and twill_ready read the agent's state at each scrape. */
  setHealthSource(source: () => { readonly problems: readonly string[]; readonly ready: boolean }): void {
    this.#healthSource = source;
  }

  /** `backend`: vxlan, ipip, host-gw or bgp. */
  observeSync(backend: string, seconds: number): void {
    this.#syncDuration.observe({ backend: labelValue(backend) }, seconds);
  }

  /**
   * twill_bgp_*: read from the bgp backend at each scrape (nothing when the backend is another).
   * The rejected counts are the backend's own monotonic counters, copied as they are.
   */
  watchRouting(read: () => RoutingStatus | undefined): void {
    const registers = [this.registry];
    // The three collectors of one scrape share one reading: routing() plans the whole learned table.
    let snapshot: { at: number; status: RoutingStatus | undefined } | undefined;
    const current = (): RoutingStatus | undefined => {
      const now = Date.now();
      if (snapshot === undefined || now - snapshot.at > SCRAPE_SNAPSHOT_MS) snapshot = { at: now, status: read() };
      return snapshot.status;
    };
    new Gauge({
      name: 'twill_bgp_session_up', help: 'BGP sessions: 1 when established, else 0, by peer address.', labelNames: ['peer'] as const, registers,
      collect() {
        this.reset();
        for (const p of current()?.peers ?? []) this.set({ peer: p.address }, p.state === 'established' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'twill_bgp_prefixes_received', help: 'Prefixes each BGP peer currently gives this host.', labelNames: ['peer'] as const, registers,
      collect() {
        this.reset();
        for (const p of current()?.peers ?? []) this.set({ peer: p.address }, p.received);
      },
    });
    new Counter({
      name: 'twill_bgp_prefixes_rejected_total', help: 'Prefixes learned over BGP and not installed, by peer and reason (default_route, outside_cluster, own_subnet, no_lease, max_prefix...).',
      labelNames: ['peer', 'reason'] as const, registers,
      collect() {
        this.reset();
        for (const r of current()?.rejected ?? []) this.inc({ peer: r.peer, reason: labelValue(r.reason) }, r.count);
      },
    });
  }
}
