import { add } from './commands/add.js';
import { check } from './commands/check.js';
import { del } from './commands/del.js';
import { gc } from './commands/gc.js';
import { status } from './commands/status.js';
import { decodeConfig, readConfig } from './config.js';
import type { PluginContext } from './context.js';
import { readCniEnv } from './spec/env.js';
import { CniCode, CniError } from './spec/errors.js';
import { convertResult } from './spec/result.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from './spec/versions.js';

/** One plugin invocation: the runtime's environment and stdin. */
export interface PluginCall {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: Buffer | string;
}

/** What the runtime gets back: the exit code and stdout (result JSON, error JSON, or nothing). */
export interface PluginReply {
  readonly exitCode: number;
  readonly stdout: string;
  /** For logs and metrics; never written to stdout. */
  readonly command: string;
  readonly error: Error | undefined;
}

/** The VERSION answer: in the version the caller asked about when twill speaks it (SPEC.md "VERSION"). */
function versionReply(stdin: Buffer | string): string {
  let asked: unknown;
  try {
    asked = (JSON.parse(stdin.toString()) as { cniVersion?: unknown }).cniVersion;
  } catch {
    asked = undefined;
  }
  const cniVersion = typeof asked === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(asked) ? asked : CURRENT_VERSION;
  return `${JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS })}\n`;
}

/**
 * Runs one CNI operation and renders its outcome the way the spec wants it on stdout. The same
 * function serves the standalone plugin process and the agent's socket, so both behave alike.
 * Never throws: every failure becomes the spec's error JSON with a non-zero exit code.
 */
export async function runPlugin(ctx: PluginContext, call: PluginCall): Promise<PluginReply> {
  let cniVersion: string = CURRENT_VERSION;
  let command = call.env.CNI_COMMAND ?? '';
  try {
    const env = readCniEnv(call.env);
    command = env.command;
    if (env.command === 'VERSION') return { exitCode: 0, stdout: versionReply(call.stdin), command, error: undefined };
    const raw = decodeConfig(call.stdin);
    if (typeof raw.cniVersion === 'string') cniVersion = raw.cniVersion;
    const conf = readConfig(raw, env.args);
    cniVersion = conf.cniVersion;
    const req = { env, conf };
    switch (env.command) {
      case 'ADD': {
        const result = await add(ctx, req);
        return { exitCode: 0, stdout: `${JSON.stringify(convertResult(result, conf.cniVersion))}\n`, command, error: undefined };
      }
      case 'DEL': await del(ctx, req); break;
      case 'CHECK': await check(ctx, req); break;
      case 'STATUS': status(req); break;
      case 'GC': await gc(ctx, req); break;
    }
    return { exitCode: 0, stdout: '', command, error: undefined };
  } catch (err) {
    const cniErr = err instanceof CniError ? err : new CniError(CniCode.INTERNAL, (err as Error).message ?? String(err), undefined, { cause: err });
    // An unsupported version is answered in ours: the runtime cannot read one it does not know.
    const replyVersion = (SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion) ? cniVersion : CURRENT_VERSION;
    return { exitCode: 1, stdout: `${JSON.stringify(cniErr.toJson(replyVersion))}\n`, command, error: err as Error };
  }
}
