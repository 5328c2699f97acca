#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { readCommandLine } from '../core/flag-parser.js';
import { twillVersion } from '../core/version.js';
import { createLogger } from '../core/logger.js';
import { DEFAULT_BRIDGE, DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE } from './config.js';
import { createPluginContext } from './context-factory.js';
import { runPlugin } from './plugin.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from './spec/versions.js';

// twill, the CNI plugin (CNI spec 1.1.0), run in-process. The runtime normally executes the
// small C shim (dist/cni/twill), which hands the call to twilld over a unix socket and comes here
// only when the agent cannot be reached, so this is the fallback that must always work (DEL
// above all). The runtime reads the result or error JSON from stdout, so nothing else is ever
// written there: logs go to stderr.

const HELP = `Usage: CNI_COMMAND=<command> twill < netconf.json
       twill [--help] [--version]

twill is Twill's CNI plugin, run by container runtimes as the CNI specification ${CURRENT_VERSION}
describes: ADD, DEL, CHECK, STATUS, GC and VERSION (spec versions ${SUPPORTED_VERSIONS.join(', ')}).

Network configuration keys (all optional): subnetFile (${DEFAULT_SUBNET_FILE}), bridge (${DEFAULT_BRIDGE}),
mtu (FLANNEL_MTU), hairpinMode (false), isDefaultGateway (true), ipMasq (the opposite of
FLANNEL_IPMASQ), forceAddress (false), dataDir (${DEFAULT_DATA_DIR}); capabilities ips and mac.

Environment: TWILL_CNI_LOG_LEVEL (default info) for the log lines on stderr.

Options:
  -h, --help   print this help and exit
  --version    print the version and exit
`;

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
    const reply = await runPlugin(ctx, { env: process.env, stdin });
    process.stdout.write(reply.stdout);
    if (reply.error) log.error({ command: reply.command, containerId: process.env.CNI_CONTAINERID, err: reply.error }, 'CNI call failed');
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
if (early !== undefined) process.exitCode = early;
else process.exitCode = await runCni();
