import type { AgentMetrics, HealthProblem } from './metrics.js';

/** What /healthz and /readyz report. */
export interface AgentHealth {
  readonly healthy: boolean;
  readonly ready: boolean;
  readonly reason: string;
  readonly subnet?: string | undefined;
  /** Every problem present now, by reason; empty when healthy. */
  readonly problems: readonly { readonly reason: HealthProblem; readonly detail: string }[];
}

/**
 * The agent's health, from the facts its parts report:
 *   - /healthz fails (503) while the agent cannot do its job: a network config it refuses, etcd
 *     unreachable past the lease's renewal deadline (a probe asked at report time, since that
 *     deadline passes without any event), or backend syncs failing again and again;
 *   - /readyz succeeds only while the lease is held, the subnet file written, the backend has
 *     synced the leases at least once since, and the agent is healthy: before that a pod wired
 *     by the CNI plugin would get an address no other host routes to yet.
 */
export class HealthState {
  readonly #problems = new Map<HealthProblem, string>();
  /** Problems that are true or not by the clock rather than by events (etcd past the renewal deadline). */
  readonly #probes = new Map<HealthProblem, () => string | undefined>();
  #stage = 'starting';
  #leaseHeld = false;
  #synced = false;
  #subnet: string | undefined;

  /** With `metrics`, twill_health_problem and twill_ready read this state at every scrape. */
  constructor(metrics?: AgentMetrics) {
    metrics?.setHealthSource(() => {
      const r = this.report();
      return { problems: r.problems.map((p) => p.reason), ready: r.ready };
    });
  }

  set(reason: HealthProblem, detail: string | undefined): void {
    if (detail === undefined) this.#problems.delete(reason);
    else this.#problems.set(reason, detail);
  }

  /** `probe` returns the problem's detail while it is present. */
  probe(reason: HealthProblem, probe: () => string | undefined): void {
    this.#probes.set(reason, probe);
  }

  /** What the agent is doing while not ready ("acquiring a subnet", ...). */
  stage(text: string): void {
    this.#stage = text;
  }

  /** The lease is held and the subnet file written (or, with undefined, the lease was lost). */
  leaseHeld(subnet: string | undefined): void {
    this.#leaseHeld = subnet !== undefined;
    this.#subnet = subnet ?? this.#subnet;
    // A new subnet is ready only after a sync that knows it.
    this.#synced = false;
    if (subnet === undefined) this.#stage = 'lease lost; acquiring again';
  }

  /** The backend synced with `subnet` as this host's own (a sync begun before a new lease does not count). */
  synced(subnet: string): void {
    if (subnet === this.#subnet && this.#leaseHeld) this.#synced = true;
  }

  report(): AgentHealth {
    const problems = [...this.#problems].map(([reason, detail]) => ({ reason, detail }));
    for (const [reason, probe] of this.#probes) {
      const detail = probe();
      if (detail !== undefined && !this.#problems.has(reason)) problems.push({ reason, detail });
    }
    const healthy = problems.length === 0;
    const ready = healthy && this.#leaseHeld && this.#synced;
    const reason = !healthy ? problems.map((p) => `${p.reason}: ${p.detail}`).join('; ')
      : ready ? 'lease held, subnet file written, backend synced'
        : this.#leaseHeld ? 'waiting for the first backend sync' : this.#stage;
    return { healthy, ready, reason, subnet: this.#subnet, problems };
  }
}
