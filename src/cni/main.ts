#!/usr/bin/env node
import { readFileSync, writeSync } from 'node:fs';
import type { PluginContext } from './context.js';
import { runPluginWithin } from './deadline.js';
import { FallbackLog } from './fallback-log.js';
import { needsContext } from './plugin.js';
import { DEFAULT_TIMEOUT_MS, MAX_FALLBACK_TIMEOUT_S } from './timeouts.js';

// twill, the CNI plugin (CNI spec 1.1.0), run in-process. The runtime normally executes the
// small C shim (dist/cni/twill), which hands the call to twilld over a unix socket and comes here
// only when the agent cannot be reached, so this is the fallback that must always work (DEL
// above all). The runtime reads the result or error JSON from stdout, so nothing else is ever
// written there: logs go to stderr.
//
// The shim runs this file bundled (scripts/bundle-plugin.mjs), and a process serves one call, so
// its start-up is most of the call's time: it loads only what this call needs. The command line
// (--help, --version), the logger, the kernel context (netlink's native code) and each command's
// code are imported when used (see docs/design/cni-shim-and-socket.md, "The fallback's start-up").

/** TWILL_CNI_TIMEOUT in ms; the default (with a log line) when it is not 1..600 whole seconds. */
async function callTimeoutMs(log: FallbackLog): Promise<number> {
  const text = process.env.TWILL_CNI_TIMEOUT;
  if (text === undefined || text === '') return DEFAULT_TIMEOUT_MS;
  const seconds = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (seconds >= 1 && seconds <= MAX_FALLBACK_TIMEOUT_S) return seconds * 1000;
  await log.warn({ TWILL_CNI_TIMEOUT: text }, `TWILL_CNI_TIMEOUT must be whole seconds from 1 to ${MAX_FALLBACK_TIMEOUT_S}; using ${DEFAULT_TIMEOUT_MS / 1000}`);
  return DEFAULT_TIMEOUT_MS;
}

/**
 * For a call that never reaches the kernel (VERSION, STATUS, a malformed call): opening netlink
 * for it would only load the native code and cost it time. runPlugin() uses a context only for
 * the commands needsContext() names, so any use of this one is a bug, and fails the call.
 */
function noContext(command: string | undefined): PluginContext {
  const missing = (): never => {
    throw new Error(`twill: ${command ?? 'a call without CNI_COMMAND'} used the kernel context it was not given`);
  };
  return {
    get hostNetlink() { return missing(); },
    get hostNetns() { return missing(); },
    get masquerade() { return missing(); },
    openNetlink: missing,
    ipam: missing,
  };
}

/**
 * Writes the reply to fd 1 directly: process.stdout on a pipe (how runtimes read a plugin) is a
 * net.Socket, and creating it loads node:net and the streams, about 4 ms of a call that otherwise
 * never needs them. Whatever a plain write cannot take (a non-blocking pipe that is full, an
 * error) goes through process.stdout as before, so the outcome is the stream's.
 */
function writeReply(text: string): void {
  const bytes = Buffer.from(text);
  let written = 0;
  try {
    while (written < bytes.length) written += writeSync(1, bytes, written);
  } catch {
    process.stdout.write(bytes.subarray(written));
  }
}

async function runCni(): Promise<number> {
  const log = new FallbackLog(process.env.TWILL_CNI_LOG_LEVEL);
  let stdin: Buffer;
  try {
    stdin = readFileSync(0);
  } catch {
    stdin = Buffer.alloc(0);
  }
  const timeoutMs = await callTimeoutMs(log);
  const command = process.env.CNI_COMMAND;
  const ctx = needsContext(command) ? (await import('./context-factory.js')).createPluginContext() : undefined;
  try {
    const reply = await runPluginWithin(ctx ?? noContext(command), { env: process.env, stdin }, { timeoutMs, setting: 'TWILL_CNI_TIMEOUT' });
    writeReply(reply.stdout);
    const about = { command: reply.command, containerId: process.env.CNI_CONTAINERID, ifname: process.env.CNI_IFNAME };
    for (const warning of reply.warnings) await log.warn(about, warning);
    if (reply.error) await log.error({ ...about, err: reply.error }, 'CNI call failed');
    return reply.exitCode;
  } finally {
    ctx?.close();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const early = argv.length > 0 ? (await import('./command-line.js')).runCommandLine(argv) : undefined;
  return early ?? runCni();
}

// Exit explicitly: work given up on at its deadline may still hold a socket open. stdout is a
// pipe or a file, which Node writes synchronously on Linux, so nothing written is lost. A
// failure escaping main() is an unhandled rejection: Node prints it and exits 1.
void main(process.argv.slice(2)).then((code) => process.exit(code));
