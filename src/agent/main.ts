#!/usr/bin/env node
import { handleCommonFlags } from '../core/cli.js';
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
  const flags = handleCommonFlags('twilld', argv, HELP);
  if (flags.done) return flags.exitCode;
  process.stderr.write(`twilld: the agent is not implemented in this build (${twillVersion()}); see 'twilld --help'.\n`);
  return 1;
}

process.exitCode = main(process.argv.slice(2));
