import { parseDuration } from '../../core/duration.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { FlagValues, helpText, readCommandLine, type FlagSpec } from '../../core/flag-parser.js';
import { twillVersion } from '../../core/version.js';
import { MAX_HOSTS } from './topology.js';

/** `twillctl demo`'s own flags (it takes none of twillctl's global ones). */
export interface DemoFlags {
  readonly hosts: number;
  readonly podsPerHost: number;
  /** Backend.Type of the network config, passed through to the agents. */
  readonly backend: string;
  readonly keep: boolean;
  readonly down: boolean;
  readonly json: boolean;
  readonly iperf: boolean;
  /** A dual-stack network: an IPv6 underlay beside the IPv4 one, and pods with an address of each family. */
  readonly ipv6: boolean;
  /** How long etcd and each twilld may take to become ready. */
  readonly readyTimeoutMs: number;
}

export type DemoCommand =
  | { readonly kind: 'run'; readonly flags: DemoFlags }
  | { readonly kind: 'help' | 'version'; readonly text: string };

const ENV_PREFIX = 'TWILL_DEMO';
export const MAX_PODS_PER_HOST = 10;

const FLAGS: readonly FlagSpec[] = [
  { name: 'hosts', kind: 'string', arg: 'N', default: '3', help: `number of hosts, 1..${MAX_HOSTS}.` },
  { name: 'pods-per-host', kind: 'string', arg: 'N', default: '2', help: `pods on each host, 1..${MAX_PODS_PER_HOST}.` },
  { name: 'backend', kind: 'string', arg: 'NAME', default: 'vxlan', help: 'Backend.Type of the network config (vxlan, host-gw, ipip, bgp, alloc, ...: any backend this build of twilld knows). bgp builds an iBGP full mesh among the hosts. alloc leases subnets but routes nothing, so only pods on the same host reach each other.' },
  { name: 'ipv6', kind: 'boolean', default: 'false', help: 'build a dual-stack cluster: an IPv6 underlay (fd00:18::/64) beside the IPv4 one, IPv6Network fd10::/48, pods with an IPv4 and an IPv6 address; pings every pair over both and prints both matrices.' },
  { name: 'keep', kind: 'boolean', default: 'false', help: 'leave the demo running afterwards, and print how to explore it and how to remove it (twillctl demo --down).' },
  { name: 'down', kind: 'boolean', default: 'false', help: 'remove a demo left running by --keep (or by a demo that was killed): its processes, namespaces and temp dir.' },
  { name: 'json', kind: 'boolean', default: 'false', help: 'print the result as JSON on stdout instead of tables (progress stays on stderr).' },
  { name: 'iperf', kind: 'boolean', default: 'true', help: 'measure pod-to-pod throughput across two hosts with iperf3 (needs 2 or more hosts).' },
  { name: 'ready-timeout', kind: 'string', arg: 'DURATION', default: '30s', help: 'how long etcd and each twilld may take to become ready (1s..1h); a slow or emulated machine needs more.' },
];

export function demoHelpText(): string {
  return helpText('Usage: twillctl demo [options]', [
    'Builds a throwaway cluster on this machine and shows Twill at work: an underlay, N hosts each running twilld, and pods wired by Twill\'s CNI plugin (dist/cni/twill), whose calls each host\'s twilld serves on its CNI socket. It then pings every pod from every pod, measures throughput with iperf3 and prints a connectivity matrix. Exit status 0 only when every ping succeeded.',
    'Everything lives in network namespaces named twill-demo-* that the demo creates and deletes (also on Ctrl-C): the machine\'s own network is never touched. Needs root, a build (npm run build), etcd (apt-get install etcd-server), nft, ping and, optionally, iperf3 (bash .ci/setup-system.sh installs them all).',
  ], FLAGS, ENV_PREFIX);
}

function count(v: FlagValues, name: string, max: number): number {
  const { what, value } = v.required(name);
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(what, value, `must be an integer 1..${max}`);
  return Number(value);
}

function readyTimeout(v: FlagValues): number {
  const { what, value } = v.required('ready-timeout');
  const ms = parseDuration(value, what);
  if (ms < 1000 || ms > 3_600_000) throw new InvalidArgumentError(what, value, 'must be between 1s and 1h');
  return ms;
}

export function parseDemoFlags(argv: readonly string[], env: NodeJS.ProcessEnv): DemoCommand {
  const cli = readCommandLine(argv, env, { program: 'twillctl demo', envPrefix: ENV_PREFIX, flags: FLAGS });
  if (cli.help) return { kind: 'help', text: demoHelpText() };
  if (cli.version) return { kind: 'version', text: `twillctl ${twillVersion()}\n` };
  const v = new FlagValues(cli.raw);
  const backend = v.required('backend');
  if (!/^[a-z][a-z0-9-]*$/.test(backend.value)) throw new InvalidArgumentError(backend.what, backend.value, 'must be a backend name such as vxlan, host-gw or alloc');
  return {
    kind: 'run',
    flags: Object.freeze({
      hosts: count(v, 'hosts', MAX_HOSTS),
      podsPerHost: count(v, 'pods-per-host', MAX_PODS_PER_HOST),
      backend: backend.value,
      keep: v.bool('keep'),
      down: v.bool('down'),
      json: v.bool('json'),
      iperf: v.bool('iperf'),
      ipv6: v.bool('ipv6'),
      readyTimeoutMs: readyTimeout(v),
    }),
  };
}
