import { ETCD_FLAGS, parseEtcdFlags, type EtcdFlags } from '../core/etcd-flags.js';
import { InvalidArgumentError } from '../core/errors.js';
import { FlagValues, helpText, readCommandLine, type FlagSpec } from '../core/flag-parser.js';
import { twillVersion } from '../core/version.js';

/** twillctl's global flags: how to reach etcd and the local agent, and the output format. */
export interface CtlFlags extends EtcdFlags {
  readonly output: 'table' | 'json';
  readonly subnetFile: string;
  readonly healthzAddr: string;
  /** uninstall: also delete this host's lease. */
  readonly deleteLease: boolean;
}

export type CtlCommand =
  | { readonly kind: 'run'; readonly flags: CtlFlags; readonly args: readonly string[] }
  | { readonly kind: 'help' | 'version'; readonly text: string };

const ENV_PREFIX = 'TWILLCTL';

const FLAGS: readonly FlagSpec[] = [
  ...ETCD_FLAGS,
  { name: 'output', short: 'o', kind: 'string', arg: 'table|json', default: 'table', help: 'output format.' },
  { name: 'subnet-file', kind: 'string', arg: 'FILE', default: '/run/twill/subnet.env', help: 'the local agent\'s subnet file (for status and uninstall; its directory holds the agent\'s state).' },
  { name: 'healthz-addr', kind: 'string', arg: 'HOST:PORT', default: '127.0.0.1:9101', help: 'the local agent\'s health listener (for status, uninstall and bgp peers|routes).' },
  { name: 'delete-lease', kind: 'boolean', default: 'false', help: 'uninstall: also delete this host\'s lease (the subnet of --subnet-file) from etcd.' },
];

const COMMANDS = [
  'Commands:',
  '  config get                 print the network config stored in etcd',
  '  config set FILE|-          validate a network config (flannel JSON) and store it; - reads stdin',
  '  leases                     list every subnet lease: subnet, public IP, backend, expiry',
  '  status                     this host\'s lease and the local agent\'s health (exit 1 if not ready)',
  '  uninstall                  remove Twill\'s devices, routes, nexthops and nft tables here, so flanneld can start (twilld must be stopped)',
  '  demo [options]             a throwaway cluster in network namespaces, pinged and measured (twillctl demo --help)',
  '  bgp peers                  the local agent\'s BGP sessions: peer, ASN, state, uptime, prefixes received/accepted/sent, last error',
  '  bgp routes                 the routes the local agent learned over BGP: prefix, next hops, peers, installed or why not',
  '  bgp serve [options]        a standalone BGP speaker printing JSON lines (twillctl bgp serve --help)',
  '',
];

export function ctlHelpText(): string {
  return helpText('Usage: twillctl [options] <command> [arguments]', [
    'twillctl shows and changes what Twill keeps in etcd, and the state of the agent on this host. Options may also come from TWILLCTL_* environment variables.',
  ], FLAGS, ENV_PREFIX, COMMANDS);
}

export function parseCtlFlags(argv: readonly string[], env: NodeJS.ProcessEnv): CtlCommand {
  const cli = readCommandLine(argv, env, { program: 'twillctl', envPrefix: ENV_PREFIX, flags: FLAGS, allowPositionals: true });
  if (cli.help) return { kind: 'help', text: ctlHelpText() };
  if (cli.version) return { kind: 'version', text: `twillctl ${twillVersion()}\n` };
  const v = new FlagValues(cli.raw);
  const output = v.required('output');
  if (output.value !== 'table' && output.value !== 'json') throw new InvalidArgumentError(output.what, output.value, 'must be table or json');
  return {
    kind: 'run',
    args: cli.positionals,
    flags: Object.freeze({
      ...parseEtcdFlags(v),
      output: output.value,
      subnetFile: v.required('subnet-file').value,
      healthzAddr: v.required('healthz-addr').value,
      deleteLease: v.bool('delete-lease'),
    }),
  };
}
