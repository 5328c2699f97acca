import type { Logger } from 'pino';
import type { KernelDeletion, LinkEvent, LinkWatch, WatchOptions } from '../netlink/index.js';
import { untilAborted } from './backend.js';

export interface RepairLoopOptions {
  /** Opens a link notification stream (Netlink.watchLinks); with `deletions` when repairDeleted is given. */
  readonly watchLinks: (options?: WatchOptions) => LinkWatch;
  /** The external interface: its coming up again triggers an immediate repair. */
  readonly extIndex: number;
  readonly intervalMs: number;
  /** Brings the kernel back to the desired state; `why` is for the log. */
  readonly repair: (why: string) => Promise<void>;
  /**
   * Writes again what the kernel reports deleted, if it was the backend's (written-state.ts).
   * Without it, deletions are left to the periodic repair.
   */
  readonly repairDeleted?: ((deletions: readonly KernelDeletion[]) => Promise<void>) | undefined;
  /**
   * Whether a deletion may concern the backend (it names an entry the backend wrote); others are
   * dropped as they arrive: the neighbour cache's churn, Twill's own removals.
   */
  readonly ownsDeleted?: ((entry: KernelDeletion) => boolean) | undefined;
  /**
   * A backend's own reason to repair at once on a link event (its device deleted or down), or
   * undefined for an event that does not concern it.
   */
  readonly linkNeedsRepair?: ((event: LinkEvent) => string | undefined) | undefined;
  /**
   * Told when the kernel's deletion notifications start being watched ('open'), when some were
   * lost ('lost'), and when the watch ends ('closed'): while open and none lost, what the backend
   * wrote is what the kernel holds.
   */
  readonly onWatch?: ((state: 'open' | 'lost' | 'closed') => void) | undefined;
  readonly log: Logger;
}

/** More deletions than this waiting at once are repaired by one full repair rather than one by one. */
const MAX_SINGLE_REPAIRS = 100_000;

/**
 * Every backend's drift repair, driven by the kernel's notifications: an entry of the backend's
 * that somebody deletes is written again at once, on its own (`repairDeleted`); the full `repair`
 * runs when the external interface comes up again (taking a link down makes the kernel flush
 * every route through it, without a notification per route), when the backend's own link event
 * says so, when notifications were lost (ENOBUFS: maybe the one that mattered), and every
 * `intervalMs` (default 5 min) as a safety net for what no notification tells (a route changed
 * in place, a nexthop group edited). Requests that arrive during a repair coalesce into one more;
 * a full repair covers the deletions reported before it started. A failed repair is logged and
 * retried at the next request. Without notifications (they cannot be opened) only the periodic
 * repair runs: a backend slower to react is better than an agent that stops. Resolves when
 * `signal` aborts, after the repair in flight has finished; it never removes anything on its way
 * out.
 */
export async function runRepairLoop(signal: AbortSignal, opts: RepairLoopOptions): Promise<void> {
  if (signal.aborted) return;
  let running: Promise<void> | undefined;
  let full: string | undefined;
  let deleted: KernelDeletion[] = [];
  const pump = (): void => {
    if (running || signal.aborted) return;
    running = (async () => {
      while (!signal.aborted) {
        if (full !== undefined || deleted.length > MAX_SINGLE_REPAIRS) {
          const why = full ?? `${deleted.length} entries deleted`;
          full = undefined;
          deleted = [];
          await opts.repair(why).catch((err: unknown) => opts.log.error({ err, why }, 'repair failed; the next resync retries'));
        } else if (deleted.length > 0 && opts.repairDeleted) {
          const batch = deleted;
          deleted = [];
          await opts.repairDeleted(batch).catch((err: unknown) => opts.log.error({ err }, 'repair of deleted entries failed; the next resync retries'));
        } else {
          break;
        }
      }
    })().finally(() => {
      running = undefined;
    });
  };
  const kick = (why: string): void => {
    if (signal.aborted) return;
    full ??= why;
    pump();
  };

  // Unknown until the first event: one that says "up" then repairs once, which is cheap.
  let extUp: boolean | undefined;
  const monitor = openMonitor(opts);
  monitor?.on('link', (event: LinkEvent) => {
    const own = opts.linkNeedsRepair?.(event);
    if (own !== undefined) {
      kick(own);
    } else if (event.link.index === opts.extIndex && event.type === 'new') {
      if (event.link.up && extUp !== true) kick(`${event.link.name} up again`);
      extUp = event.link.up;
    }
  });
  const watched = opts.repairDeleted ? 'kernel' : 'link';
  monitor?.on('error', (err: Error) => {
    opts.onWatch?.('lost');
    kick(`${watched} notifications lost (${err.message})`);
  });
  if (opts.repairDeleted && monitor) opts.onWatch?.('open');
  if (opts.repairDeleted) {
    monitor?.on('deleted', (entry: KernelDeletion) => {
      if (opts.ownsDeleted?.(entry) === false) return;
      deleted.push(entry);
      pump();
    });
  }
  const timer = setInterval(() => kick('periodic'), opts.intervalMs);
  try {
    await untilAborted(signal);
  } finally {
    clearInterval(timer);
    monitor?.close();
    if (opts.repairDeleted && monitor) opts.onWatch?.('closed');
    await running;
  }
}

function openMonitor(opts: RepairLoopOptions): LinkWatch | undefined {
  try {
    return opts.watchLinks(opts.repairDeleted ? { deletions: true } : undefined);
  } catch (err) {
    opts.log.warn({ err }, 'cannot watch link changes; drift is repaired by the periodic resync only');
    return undefined;
  }
}

/**
 * The linkNeedsRepair of a backend with a device of its own (twill.1, twill.ipip): repair at once
 * when it is deleted or taken down. The kernel flushes every route through a device that goes
 * down or away, so waiting for the periodic resync would cut traffic for up to an interval.
 */
export function deviceNeedsRepair(deviceName: string): (event: LinkEvent) => string | undefined {
  return (ev) => (ev.link.name === deviceName && (ev.type === 'deleted' || !ev.link.up) ? `${deviceName} ${ev.type === 'deleted' ? 'deleted' : 'down'}` : undefined);
}
