#!/usr/bin/env node
import { InvalidArgumentError } from '../core/errors.js';
import { readCommandLine } from '../core/flag-parser.js';
import { twillVersion } from '../core/version.js';

// twill, the CNI plugin (CNI spec 1.1.0). The runtime passes the command in CNI_COMMAND and the
// network config on stdin, and reads the result or error JSON from stdout, so nothing else may
// ever be written there: diagnostics go to stderr. This build answers VERSION; ADD, DEL, CHECK,
// STATUS and GC arrive in a later release and fail with a CNI error until then.

const CNI_VERSION = '1.1.0';
const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const SPEC_COMMANDS = new Set(['ADD', 'DEL', 'CHECK', 'STATUS', 'GC']);

// CNI error codes: 4 = invalid necessary environment variables; 100+ = plugin-specific.
const ERR_INVALID_ENV = 4;
const ERR_NOT_IMPLEMENTED = 100;

const HELP = `Usage: CNI_COMMAND=<command> twill < netconf.json
       twill [--help] [--version]

twill is Twill's CNI plugin, run by container runtimes as the CNI specification ${CNI_VERSION}
describes. VERSION reports these spec versions: ${SUPPORTED_VERSIONS.join(', ')}.

Options:
  -h, --help   print this help and exit
  --version    print the version and exit

Status: this build (${twillVersion()}) implements CNI_COMMAND=VERSION only. ADD, DEL, CHECK,
STATUS and GC arrive in a later release; until then they fail with CNI error code ${ERR_NOT_IMPLEMENTED}.
`;

function cniError(code: number, msg: string): number {
  process.stdout.write(`${JSON.stringify({ cniVersion: CNI_VERSION, code, msg })}\n`);
  return 1;
}

function runCni(command: string): number {
  if (command === 'VERSION') {
    process.stdout.write(`${JSON.stringify({ cniVersion: CNI_VERSION, supportedVersions: SUPPORTED_VERSIONS })}\n`);
    return 0;
  }
  if (SPEC_COMMANDS.has(command)) return cniError(ERR_NOT_IMPLEMENTED, `twill: ${command} not implemented in this build`);
  return cniError(ERR_INVALID_ENV, `twill: unknown CNI_COMMAND ${JSON.stringify(command)}`);
}

function main(argv: string[]): number {
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
  const command = process.env['CNI_COMMAND'];
  if (command === undefined || command === '') {
    process.stderr.write(`twill: CNI_COMMAND is not set; this is a CNI plugin, run by a container runtime.\nTry 'twill --help'.\n`);
    return 1;
  }
  return runCni(command);
}

process.exitCode = main(process.argv.slice(2));
