#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { readCommandLine } from '../core/flag-parser.js';
import { twillVersion } from '../core/version.js';
import { createLogger, type Logger } from '../core/logger.js';
import { DEFAULT_BRIDGE, DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE } from './config.js';
import { createPluginContext } from './context-factory.js';
import { runPluginWithin } from './deadline.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from './spec/versions.js';
import { DEFAULT_TIMEOUT_MS } from './timeouts.js';

// twill, the CNI plugin (CNI spec 1.1.0), run in-process. The runtime normally executes the
// small C shim (dist/cni/twill), which hands the call to twilld over a unix socket and comes here
// only when the agent cannot be reached, so this is the fallback that must always work (DEL
// above all). The runtime reads the result or error JSON from stdout, so nothing else is ever
// written there: logs go to stderr.

/** The shim allows the same (src/cni/shim/twill-cni.c). */
const MAX_FALLBACK_TIMEOUT_S = 600;

const HELP = `Usage: CNI_COMMAND=<command> twill < netconf.json
       twill [--help] [--version]

twill is Twill's CNI plugin, run by container runtimes as the CNI specification ${CURRENT_VERSION}
describes: ADD, DEL, CHECK, STATUS, GC and VERSION (spec versions ${SUPPORTED_VERSIONS.join(', ')}).

Network configuration keys (all optional): subnetFile (${DEFAULT_SUBNET_FILE}), bridge (${DEFAULT_BRIDGE}),
mtu (FLANNEL_MTU), hairpinMode (false), isDefaultGateway (true), ipMasq (the opposite of
FLANNEL_IPMASQ), forceAddress (false), dataDir (${DEFAULT_DATA_DIR}); capabilities ips and mac.

Environment: TWILL_CNI_LOG_LEVEL (default info) for the log lines on stderr; TWILL_CNI_TIMEOUT,
the whole seconds a call may take before it fails with code 11 and is rolled back (default ${DEFAULT_TIMEOUT_MS / 1000},
at most ${MAX_FALLBACK_TIMEOUT_S}).

Options:
  -h, --help   print this help and exit
  --version    print the version and exit
`;

/** TWILL_CNI_TIMEOUT in ms; the default (with a log line) when it is not 1..600 whole seconds. */
function callTimeoutMs(log: Logger): number {
  const text = process.env.TWILL_CNI_TIMEOUT;
  if (text === undefined || text === '') return DEFAULT_TIMEOUT_MS;
  const seconds = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (seconds >= 1 && seconds <= MAX_FALLBACK_TIMEOUT_S) return seconds * 1000;
  log.warn({ TWILL_CNI_TIMEOUT: text }, `TWILL_CNI_TIMEOUT must be whole seconds from 1 to ${MAX_FALLBACK_TIMEOUT_S}; using ${DEFAULT_TIMEOUT_MS / 1000}`);
  return DEFAULT_TIMEOUT_MS;
}

async function runCni(): Promise<number> {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
  const level = levels.find((l) => l === process.env.TWILL_CNI_LOG_LEVEL) ?? 'info';
  const log = createLogger({ level }).child({ component: 'cni' });
  let stdin: Buffer;
  try {
    stdin = readFileSync(0);
  } catch {
    stdin = Buffer.alloc(0);
  }
  const ctx = createPluginContext();
  try {
    const reply = await runPluginWithin(ctx, { env: process.env, stdin }, { timeoutMs: callTimeoutMs(log), setting: 'TWILL_CNI_TIMEOUT' });
    process.stdout.write(reply.stdout);
    const about = { command: reply.command, containerId: process.env.CNI_CONTAINERID, ifname: process.env.CNI_IFNAME };
    for (const warning of reply.warnings) log.warn(about, warning);
    if (reply.error) log.error({ ...about, err: reply.error }, 'CNI call failed');
    return reply.exitCode;
  } finally {
    ctx.close();
  }
}

/** --help and --version; undefined when the call is a CNI call. */
function main(argv: string[]): number | undefined {
  if (argv.length > 0) {
    // Only --help and --version; the environment belongs to the runtime (CNI_*), so none is read.
    let cli;
    try {
      cli = readCommandLine(argv, {}, { program: 'twill', envPrefix: 'TWILL_CNI', flags: [] });
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      process.stderr.write(`twill: ${err.message}\n`);
      return 2;
    }
    if (cli.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (cli.version) {
      process.stdout.write(`twill ${twillVersion()}\n`);
      return 0;
    }
  }
  return undefined;
}

const early = main(process.argv.slice(2));
// Exit explicitly: work given up on at its deadline may still hold a socket open. stdout is a
// pipe or a file, which Node writes synchronously on Linux, so nothing written is lost.
process.exit(early ?? await runCni());
