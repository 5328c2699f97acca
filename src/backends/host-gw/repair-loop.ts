import type { Logger } from 'pino';
import type { LinkEvent, LinkMonitor, Netlink } from '../../netlink/index.js';
import { untilAborted } from '../backend.js';

export interface RepairLoopOptions {
  readonly netlink: Netlink;
  /** The external interface: its coming up triggers an immediate repair. */
  readonly ifindex: number;
  readonly intervalMs: number;
  /** Re-applies the desired state. Must not reject (it logs its own failures). */
  readonly repair: () => Promise<void>;
  readonly log: Logger;
}

/**
 * Calls `repair` every `intervalMs` (flannel's route check, which catches routes someone
 * deleted) and at once whenever the external interface comes up: taking a link down makes the
 * kernel flush every route through it, and waiting for the next tick would cut traffic for up to a
 * whole interval. Requests that arrive during a repair coalesce into one more. Resolves when
 * `signal` aborts, after the repair in flight (if any) has finished; it never removes anything.
 */
export async function runRepairLoop(signal: AbortSignal, opts: RepairLoopOptions): Promise<void> {
  if (signal.aborted) return;
  let running: Promise<void> | undefined;
  let again = false;
  const kick = (): void => {
    if (signal.aborted) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await opts.repair().catch((err: unknown) => opts.log.error({ err }, 'route repair failed'));
      } while (again && !signal.aborted);
    })().finally(() => {
      running = undefined;
    });
  };

  const monitor = openMonitor(opts);
  monitor?.on('link', (event: LinkEvent) => {
    if (event.type === 'new' && event.link.index === opts.ifindex && event.link.up) {
      opts.log.debug({ iface: event.link.name }, 'external interface is up; re-applying routes');
      kick();
    }
  });
  // ENOBUFS: notifications were lost, maybe the one that mattered. Re-applying is cheap.
  monitor?.on('error', (err: Error) => {
    opts.log.warn({ err }, 'link notifications lost; re-applying routes');
    kick();
  });
  const timer = setInterval(kick, opts.intervalMs);
  try {
    await untilAborted(signal);
  } finally {
    clearInterval(timer);
    monitor?.close();
    await running;
  }
}

/** Without link notifications the periodic repair still works, only slower to react. */
function openMonitor(opts: RepairLoopOptions): LinkMonitor | undefined {
  try {
    return opts.netlink.watchLinks();
  } catch (err) {
    opts.log.warn({ err }, 'cannot watch link changes; routes are repaired by the periodic resync only');
    return undefined;
  }
}
