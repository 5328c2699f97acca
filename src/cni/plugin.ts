import { decodeConfig, readConfig } from './config.js';
import type { PluginContext } from './context.js';
import { requireSameDataDir } from './data-dir-view.js';
import { readCniEnv } from './spec/env.js';
import { CniCode, CniError } from './spec/errors.js';
import { convertResult } from './spec/result.js';
import { replyVersion, SUPPORTED_VERSIONS } from './spec/versions.js';

/** One plugin invocation: the runtime's environment and stdin. */
export interface PluginCall {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: Buffer | string;
  /**
   * The process that made the call, when it came over the agent's socket (its pid as the agent
   * sees it; 0 when it is not visible): the data directory must be the same for it and for us.
   */
  readonly callerPid?: number | undefined;
}

/** What the runtime gets back: the exit code and stdout (result JSON, error JSON, or nothing). */
export interface PluginReply {
  readonly exitCode: number;
  readonly stdout: string;
  /** For logs and metrics; never written to stdout. */
  readonly command: string;
  readonly error: Error | undefined;
  /** Things worth a log line that did not fail the call (stray files skipped...). */
  readonly warnings: readonly string[];
}

/** A failed call's reply: the spec's error JSON in `cniVersion` on stdout, exit code 1. */
export function errorReply(command: string, err: unknown, cniVersion: string, warnings: readonly string[] = []): PluginReply {
  const cniErr = err instanceof CniError ? err : new CniError(CniCode.INTERNAL, (err as Error).message ?? String(err), undefined, { cause: err });
  return { exitCode: 1, stdout: `${JSON.stringify(cniErr.toJson(cniVersion))}\n`, command, error: err as Error, warnings };
}

/** The VERSION answer: in the version the caller asked about when twill speaks it (SPEC.md "VERSION"). */
function versionReply(stdin: Buffer | string): string {
  return `${JSON.stringify({ cniVersion: replyVersion(stdin), supportedVersions: SUPPORTED_VERSIONS })}\n`;
}

/**
 * Commands that read or write the data directory (the caller must see the same one), and the
 * only ones that use the PluginContext: VERSION and STATUS never touch the kernel.
 */
const USES_DATA_DIR = new Set(['ADD', 'DEL', 'CHECK', 'GC']);

/** Whether a call with this CNI_COMMAND needs a PluginContext (its netlink sockets, nft, IPAM). */
export function needsContext(command: string | undefined): boolean {
  return command !== undefined && USES_DATA_DIR.has(command);
}

/**
 * Runs one CNI operation and renders its outcome the way the spec wants it on stdout. The same
 * function serves the standalone plugin process and the agent's socket, so both behave alike.
 * Never throws: every failure becomes the spec's error JSON with a non-zero exit code. `signal`
 * is the call's deadline (deadline.ts).
 */
export async function runPlugin(ctx: PluginContext, call: PluginCall, signal?: AbortSignal): Promise<PluginReply> {
  let command = call.env.CNI_COMMAND ?? '';
  const warnings = new Set<string>();
  try {
    const env = readCniEnv(call.env);
    command = env.command;
    if (env.command === 'VERSION') return { exitCode: 0, stdout: versionReply(call.stdin), command, error: undefined, warnings: [] };
    const conf = readConfig(decodeConfig(call.stdin), env.args);
    if (call.callerPid !== undefined && USES_DATA_DIR.has(command)) requireSameDataDir(conf.dataDir, call.callerPid);
    const req = { env, conf, signal, warn: (message: string) => warnings.add(message) };
    let stdout = '';
    // Each command's code is loaded when it is first called: the in-process plugin runs one
    // command per process and so never loads the others (the agent's threads keep them loaded).
    switch (env.command) {
      case 'ADD': stdout = `${JSON.stringify(convertResult(await (await import('./commands/add.js')).add(ctx, req), conf.cniVersion))}\n`; break;
      case 'DEL': await (await import('./commands/del.js')).del(ctx, req); break;
      case 'CHECK': await (await import('./commands/check.js')).check(ctx, req); break;
      case 'STATUS': (await import('./commands/status.js')).status(req); break;
      case 'GC': await (await import('./commands/gc.js')).gc(ctx, req); break;
    }
    return { exitCode: 0, stdout, command, error: undefined, warnings: [...warnings] };
  } catch (err) {
    return errorReply(command, err, replyVersion(call.stdin), [...warnings]);
  }
}
