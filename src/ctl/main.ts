#!/usr/bin/env node
import { handleCommonFlags } from '../core/cli.js';
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
  const flags = handleCommonFlags('twillctl', argv, HELP, true);
  if (flags.done) return flags.exitCode;
  const positionals = flags.positionals;
  const command = positionals[0];
  process.stderr.write(
    command === undefined
      ? `twillctl: no command given (this build has none yet)\nTry 'twillctl --help'.\n`
      : `twillctl: unknown command '${command}' (this build has none yet)\nTry 'twillctl --help'.\n`,
  );
  return 2;
}

process.exitCode = main(process.argv.slice(2));
