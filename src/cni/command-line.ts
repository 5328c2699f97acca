import { InvalidArgumentError } from '../core/errors.js';
import { readCommandLine } from '../core/flag-parser.js';
import { twillVersion } from '../core/version.js';
import { DEFAULT_BRIDGE, DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE } from './config.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from './spec/versions.js';
import { DEFAULT_TIMEOUT_MS, MAX_FALLBACK_TIMEOUT_S } from './timeouts.js';

// `twill --help` and `twill --version`: the plugin run by a person rather than by a runtime. A
// runtime passes no arguments, so main.ts loads this file only when there are some.

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

/**
 * Answers --help and --version with the exit code; an unknown argument is code 2. Undefined when
 * neither was asked for (`twill --`): then the call is a CNI call like any other.
 */
export function runCommandLine(argv: readonly string[]): number | undefined {
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
  return undefined;
}
