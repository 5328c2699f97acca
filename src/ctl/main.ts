#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { twillVersion } from '../core/version.js';

// twillctl, the operator's command line. This build only answers --help and --version: its
// commands (leases, peers, routes, health) arrive together with the agent's local API.

const HELP = `Usage: twillctl [--help] [--version] <command>

twillctl inspects and controls a running twilld through its local API.

Options:
  -h, --help   print this help and exit
  --version    print the version and exit

Commands: none yet. This build (${twillVersion()}) contains the netlink layer only; twillctl's
commands arrive in later releases, together with the agent's local API.
`;

function main(argv: string[]): number {
  let parsed: { values: { help?: boolean; version?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    process.stderr.write(`twillctl: ${(err as Error).message}\nTry 'twillctl --help'.\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version === true) {
    process.stdout.write(`twillctl ${twillVersion()}\n`);
    return 0;
  }
  const command = positionals[0];
  process.stderr.write(
    command === undefined
      ? `twillctl: no command given (this build has none yet)\nTry 'twillctl --help'.\n`
      : `twillctl: unknown command '${command}' (this build has none yet)\nTry 'twillctl --help'.\n`,
  );
  return 2;
}

process.exitCode = main(process.argv.slice(2));
