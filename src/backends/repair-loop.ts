import type { Logger } from 'pino';
import type { LinkEvent, LinkWatch } from '../netlink/index.js';
import { untilAborted } from './backend.js';

export interface RepairLoopOptions {
  /** Opens a link notification stream (Netlink.watchLinks). */
  readonly watchLinks: () => LinkWatch;
  /** The external interface: its coming up again triggers an immediate repair. */
  readonly extIndex: number;
  readonly intervalMs: number;
  /** Brings the kernel back to the desired state; `why` is for the log. */
  readonly repair: (why: string) => Promise<void>;
  /**
   * A backend's own reason to repair at once on a link event (its device deleted or down), or
   * undefined for an event that does not concern it.
   */
  readonly linkNeedsRepair?: ((event: LinkEvent) => string | undefined) | undefined;
  readonly log: Logger;
}

/**
 * Every backend's drift repair: `repair` runs every `intervalMs` (flannel's route check, which
 * catches entries someone deleted) and at once when the external interface comes up again
 * (taking a link down makes the kernel flush every route through it: waiting for the next tick
 * would cut traffic for up to a whole interval), when the backend's own link event says so, and
 * when notifications were lost (ENOBUFS: maybe the one that mattered). Requests that arrive during
 * a repair coalesce into one more. A failed repair is logged and retried at the next request.
 * Without link notifications (they cannot be opened) only the periodic repair runs: a backend
 * slower to react is better than an agent that stops. Resolves when `signal` aborts, after the
 * repair in flight has finished; it never removes anything on its way out.
 */
export async function runRepairLoop(signal: AbortSignal, opts: RepairLoopOptions): Promise<void> {
  if (signal.aborted) return;
  let running: Promise<void> | undefined;
  let again: string | undefined;
  const kick = (why: string): void => {
    if (signal.aborted) return;
    if (running) {
      again ??= why;
      return;
    }
    running = (async () => {
      let reason: string | undefined = why;
      while (reason !== undefined && !signal.aborted) {
        again = undefined;
        await opts.repair(reason).catch((err: unknown) => opts.log.error({ err, why: reason }, 'repair failed; the next resync retries'));
        reason = again;
      }
    })().finally(() => {
      running = undefined;
    });
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
  monitor?.on('error', (err: Error) => kick(`link notifications lost (${err.message})`));
  const timer = setInterval(() => kick('periodic'), opts.intervalMs);
  try {
    await untilAborted(signal);
  } finally {
    clearInterval(timer);
    monitor?.close();
    await running;
  }
}

function openMonitor(opts: RepairLoopOptions): LinkWatch | undefined {
  try {
    return opts.watchLinks();
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
