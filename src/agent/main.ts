#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { twillVersion } from '../core/version.js';

// twilld, the node agent. This build only answers --help and --version: leases, backends and
// the resync loop arrive in later releases, and until then starting the agent fails loudly.

const HELP = `Usage: twilld [--help] [--version]

twilld is Twill's node agent: it will hold this node's subnet lease in etcd and program the
overlay (vxlan, ipip, host-gw or bgp backend) to reach every other node's subnet.

Options:
  -h, --help   print this help and exit
  --version    print the version and exit

Status: this build (${twillVersion()}) contains the netlink layer only. The agent itself
(configuration flags, etcd leases, backends) arrives in later releases; running twilld without
an option exits with status 1.
`;

function main(argv: string[]): number {
  let values: { help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`twilld: ${(err as Error).message}\nTry 'twilld --help'.\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version === true) {
    process.stdout.write(`twilld ${twillVersion()}\n`);
    return 0;
  }
  process.stderr.write(`twilld: the agent is not implemented in this build (${twillVersion()}); see 'twilld --help'.\n`);
  return 1;
}

process.exitCode = main(process.argv.slice(2));
