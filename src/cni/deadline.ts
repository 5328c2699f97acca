import type { PluginContext } from './context.js';
import { errorReply, runPlugin, type PluginCall, type PluginReply } from './plugin.js';
import { CniCode, CniError } from './spec/errors.js';
import { replyVersion } from './spec/versions.js';
import { undoMs } from './timeouts.js';

/**
 * Every CNI call has a deadline (twilld --cni-timeout, TWILL_CNI_TIMEOUT for the shim's
 * in-process fallback; 60 s by default). A runtime waits for the plugin without a limit of its
 * own (cni.md §5: kubelet gives a whole sandbox 4 minutes), so a call that hangs would hang the
 * pod's creation and every call queued behind it. When the deadline passes, the call's signal is
 * aborted: an ADD stops at its next step and undoes what it did (commands/add.ts). If it does not
 * settle within the undo window (timeouts.ts; stuck inside one step), a DEL with the same parameters removes what
 * the ADD may have made, as the runtime's own DEL after a failed ADD would. Either way the reply
 * is code 11 ("try again later"). Work stuck in a system call never returns to JavaScript; the
 * agent's thread pool and the shim guard against that one level up (plugin-pool.ts, the shim).
 */

export interface DeadlineOptions {
  readonly timeoutMs: number;
  /** Names the setting in the error message, e.g. "twilld --cni-timeout". */
  readonly setting: string;
  /**
   * Whether a rollback DEL may still run. A thread the agent gave up on and that wakes up much
   * later must not: the runtime may have added the same container again meanwhile.
   */
  readonly mayRollBack?: () => boolean;
  /** Ends the wait early, as if the deadline had passed (the agent shutting down). */
  readonly expire?: AbortSignal | undefined;
}

type Outcome<T> = { readonly done: true; readonly value: T } | { readonly done: false };

/** `work`'s value if it settles within `ms` (and before `expire`), else { done: false }. */
function within<T>(work: Promise<T>, ms: number, expire?: AbortSignal): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    const stop = (): void => {
      clearTimeout(timer);
      expire?.removeEventListener('abort', stop);
      resolve({ done: false });
    };
    const timer = setTimeout(stop, ms);
    if (expire?.aborted) stop();
    expire?.addEventListener('abort', stop);
    void work.then((value) => {
      clearTimeout(timer);
      expire?.removeEventListener('abort', stop);
      resolve({ done: true, value });
    });
  });
}

/** runPlugin with the call's deadline; never throws, and answers within timeout + 2 × undoMs(timeout). */
export async function runPluginWithin(ctx: PluginContext, call: PluginCall, opts: DeadlineOptions): Promise<PluginReply> {
  const abort = new AbortController();
  const work = runPlugin(ctx, call, abort.signal);
  const first = await within(work, opts.timeoutMs, opts.expire);
  if (first.done) return first.value;

  const command = call.env.CNI_COMMAND ?? '';
  const seconds = Math.round(opts.timeoutMs / 100) / 10;
  const reason = new CniError(CniCode.TRY_AGAIN_LATER, `twill: ${command || 'the call'} did not finish within ${seconds} s (${opts.setting})`);
  abort.abort(reason);
  const undoWindow = undoMs(opts.timeoutMs);
  const settled = await within(work, undoWindow);
  // It finished after all (past its last step when the deadline came), or failed on its own.
  if (settled.done && settled.value.error !== reason) return settled.value;
  let undone = settled.done;
  if (!settled.done && command === 'ADD' && (opts.mayRollBack?.() ?? true)) {
    const rollback = await within(runPlugin(ctx, { ...call, env: { ...call.env, CNI_COMMAND: 'DEL' } }), undoWindow);
    undone = rollback.done && rollback.value.exitCode === 0;
  }
  const note = command !== 'ADD' ? '' : undone ? '; what it had done is undone' : '; undoing it did not finish either: the runtime\'s DEL will';
  const warnings = settled.done ? settled.value.warnings : [];
  return errorReply(command, new CniError(CniCode.TRY_AGAIN_LATER, `${reason.message}${note}`), replyVersion(call.stdin), warnings);
}
