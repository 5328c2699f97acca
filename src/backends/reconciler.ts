import type { Logger } from 'pino';
import type { KernelDeletion, LinkEvent, LinkWatch, NetlinkHandle, WatchOptions } from '../netlink/index.js';
import type { RemoteLease, SyncReport } from './backend.js';
import { runRepairLoop } from './repair-loop.js';
import { WriteQueue } from './write-queue.js';
import { repairDeletions, WrittenState } from './written-state.js';

/** A backend's own steps; the Reconciler decides when they run. */
export interface ReconcileSteps {
  /** Brings the kernel in line with `desired` (declarative, idempotent). */
  apply(desired: readonly RemoteLease[]): Promise<SyncReport>;
  /**
   * A resync before the first desired set: what can be repaired without one (vxlan: its
   * device). It must remove nothing.
   */
  beforeFirstSet?(why: string): Promise<void>;
}

export interface ReconcileLoopOptions {
  readonly watchLinks: (options?: WatchOptions) => LinkWatch;
  /**
   * Where `written` was written: with it, an entry somebody deletes is written again at once on
   * its own; without it, at the next full repair.
   */
  readonly netlink?: NetlinkHandle | undefined;
  readonly extIndex: number;
  readonly intervalMs: number;
  /** The backend's own reason to repair at once on a link event, if any (see repair-loop.ts). */
  readonly linkNeedsRepair?: ((event: LinkEvent) => string | undefined) | undefined;
}

/**
 * What every backend's Network does the same way (flannel's RouteNetwork is the model): keep the
 * newest desired set, run every kernel write through one queue, re-apply the set on resync and
 * on link events, and nothing before the first set: an empty set would delete every entry a
 * restarted agent found in place, cutting traffic until the lease watch delivers its snapshot.
 */
export class Reconciler {
  #desired: readonly RemoteLease[] | undefined;
  readonly #queue = new WriteQueue();
  /** What the backend's last apply wrote: its apply step records it (syncRoutes, applyPlan). */
  readonly written = new WrittenState();
  /** Kernel deletion notifications are being watched. */
  #watching = false;
  /** Counts losses of notifications (and the watch's starts), so an apply knows if one came during it. */
  #watchEpoch = 0;
  #trusted = false;

  constructor(private readonly steps: ReconcileSteps, private readonly log: Logger, private readonly what: string) {}

  /** Whether sync() has been called yet. */
  get hasDesiredSet(): boolean {
    return this.#desired !== undefined;
  }

  /** Any other kernel-writing step of the backend (creating its device, start), in the same queue. */
  serial<T>(step: () => Promise<T>): Promise<T> {
    return this.#queue.run(step);
  }

  /**
   * The set is kept before it is applied, so a failed sync is retried by the next resync. A
   * resync already queued applies it too (it reads the newest), and this report then counts only
   * what was left to do: the kernel state is the same either way.
   */
  sync(desired: readonly RemoteLease[]): Promise<SyncReport> {
    this.#desired = desired;
    return this.serial(() => this.applyAll(desired));
  }

  /**
   * Whether `written` is what the kernel holds of the backend's: a full apply completed while the
   * kernel's notifications were watched, and none were lost since. Then a few changes may be
   * written against it alone (route-changes.ts) instead of a dump of the whole table.
   */
  get writtenTrusted(): boolean {
    return this.#trusted;
  }

  private applyAll(desired: readonly RemoteLease[]): Promise<SyncReport> {
    return this.asFullApply(() => this.steps.apply(desired));
  }

  /**
   * Runs `apply`, a sync of everything the backend owns (called in the queue), and trusts
   * `written` after it if no notification was lost meanwhile.
   */
  async asFullApply<T>(apply: () => Promise<T>): Promise<T> {
    const epoch = this.#watchEpoch;
    const result = await apply();
    if (this.#watching && epoch === this.#watchEpoch) this.#trusted = true;
    return result;
  }

  private watchChanged(state: 'open' | 'lost' | 'closed'): void {
    this.#watchEpoch += 1;
    this.#watching = state !== 'closed';
    this.#trusted = false;
  }

  /** Re-applies the newest desired set (or, before the first, beforeFirstSet). */
  resync(why: string): Promise<void> {
    return this.serial(async () => {
      const desired = this.#desired;
      if (desired === undefined) {
        await this.steps.beforeFirstSet?.(why);
        return;
      }
      const report = await this.applyAll(desired);
      if (report.changes > 0) this.log.info({ why, changes: report.changes }, `${this.what} kernel state repaired`);
    });
  }

  /**
   * Writes again, in the queue, the deleted entries that the last apply wrote; a write the
   * kernel refuses makes a full resync follow.
   */
  async repairDeleted(nl: NetlinkHandle, deletions: readonly KernelDeletion[]): Promise<void> {
    const result = await this.serial(async () => (this.#desired === undefined ? undefined : repairDeletions(nl, this.written, deletions)));
    if (result === undefined) return;
    if (result.written > 0) this.log.info({ entries: result.entries.slice(0, 10), count: result.written }, `${this.what} entries deleted outside Twill written again`);
    if (result.failed > 0) await this.resync(`${result.failed} deleted or taken entries could not be written again`);
  }

  /** The repair loop until `signal` aborts; then waits for writes in progress. Leaves the kernel as it is. */
  async run(signal: AbortSignal, opts: ReconcileLoopOptions): Promise<void> {
    const nl = opts.netlink;
    await runRepairLoop(signal, {
      ...opts, repair: (why) => this.resync(why), log: this.log,
      repairDeleted: nl === undefined ? undefined : (deletions) => this.repairDeleted(nl, deletions),
      ownsDeleted: (entry) => this.written.holds(entry),
      onWatch: (state) => this.watchChanged(state),
    });
    await this.#queue.drained();
  }
}
