import { isIPv4, isIPv6 } from 'node:net';
import { formatDuration, parseDuration } from '../core/duration.js';
import { InvalidArgumentError } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import { validateIfname } from '../core/ifname.js';
import { parseLogLevel, type LogLevel } from '../core/logger.js';
import { twillVersion } from '../core/version.js';
import { ETCD_FLAGS, hidePassword, parseEtcdFlags, type EtcdFlags } from '../core/etcd-flags.js';
import { envName as envVar, FlagValues, flagTableMarkdown, helpText, integerInRange, readCommandLine, type FlagSpec } from '../core/flag-parser.js';
import { formatHostPort, parseHostPort } from '../core/host-port.js';
import type { HostBgpSettings } from '../backends/backend.js';
import { parseAsn, parseListenFlag, parsePeerFlag, parseSpeaker } from '../backends/bgp/config.js';
import { DEFAULT_MAX_THREADS, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS } from '../cni/plugin-pool.js';
import { ipv6EndpointProblem } from '../ipam/ipv6.js';

// twilld's command line: the etcd flags shared with twillctl, then the agent's own. Every flag
// can also come from the environment as TWILLD_<FLAG_IN_UPPER_SNAKE> (see core/flag-parser.ts).

/** The validated settings, frozen. Durations are in milliseconds. */
export interface AgentFlags extends EtcdFlags {
  /** --iface values in order: interface names or IP addresses; empty = the default route's interface. */
  readonly ifaces: readonly string[];
  readonly publicIp: string | undefined;
  /** --public-ipv6, canonical (RFC 5952). */
  readonly publicIpv6: string | undefined;
  readonly subnetFile: string;
  readonly subnetLeaseTtlMs: number;
  readonly ipMasq: boolean;
  /** "host:port" for /healthz, /readyz and /metrics, or undefined when disabled. */
  readonly healthzAddr: string | undefined;
  readonly metrics: boolean;
  readonly logLevel: LogLevel;
  readonly resyncIntervalMs: number;
  /** Where the CNI shim reaches the agent; undefined when serving CNI calls is off. */
  readonly cniSocket: string | undefined;
  /** The CNI plugin's default dataDir, reconciled against live namespaces at start. */
  readonly cniDataDir: string;
  /** Threads serving CNI calls. */
  readonly cniWorkers: number;
  /** Each CNI call's deadline. */
  readonly cniTimeoutMs: number;
  /** A group whose members may use the CNI socket besides root; undefined: root only. */
  readonly cniSocketGroup: number | undefined;
  /** The runtime's CNI configuration directory, read for the dataDirs in use; undefined: not read. */
  readonly cniConfDir: string | undefined;
  /** --bgp-*, --gobgp-api: this host's own BGP settings, for the bgp backend. */
  readonly bgp: HostBgpSettings;
}

export type AgentCommand =
  | { readonly kind: 'run'; readonly flags: AgentFlags }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version'; readonly text: string };


/** twilld's flags: the one table behind the parser, --help and the README's flag reference. */
export const AGENT_FLAGS: readonly FlagSpec[] = [
  ...ETCD_FLAGS,
  { name: 'iface', kind: 'list', arg: 'NAME|IP', help: 'interface for traffic to other nodes, by name or by one of its IPv4 or IPv6 addresses; comma-separated and/or repeated, the first that exists wins (default: the interface of the default route).' },
  { name: 'public-ip', kind: 'string', arg: 'IPv4', help: 'address other nodes use to reach this one (default: the interface\'s address); set it behind NAT.' },
  { name: 'public-ipv6', kind: 'string', arg: 'IPv6', help: 'IPv6 address other nodes use to reach this one in a dual-stack or IPv6-only network (default: the interface\'s first global IPv6 address).' },
  { name: 'subnet-file', kind: 'string', arg: 'FILE', default: '/run/twill/subnet.env', help: 'absolute path where the subnet, MTU and masquerade setting are written for the CNI plugin (flannel\'s subnet.env format).' },
  { name: 'subnet-lease-ttl', kind: 'string', arg: 'DURATION', default: '24h', help: 'lifetime of the subnet lease in etcd; whole seconds, at least 2s.' },
  { name: 'ip-masq', kind: 'boolean', default: 'false', help: 'masquerade traffic from pods to outside the overlay network.' },
  { name: 'healthz-addr', kind: 'string', arg: 'HOST:PORT', default: '127.0.0.1:9101', help: 'listen address of /healthz, /readyz and /metrics; port 0 picks a free port, "" or "off" disables the listener.' },
  { name: 'metrics', kind: 'boolean', default: 'true', help: 'serve Prometheus metrics at /metrics on the healthz listener.' },
  { name: 'log-level', kind: 'string', arg: 'LEVEL', default: 'info', help: 'fatal, error, warn, info, debug or trace; logs are JSON lines on stderr.' },
  { name: 'cni-socket', kind: 'string', arg: 'PATH', default: '/run/twill/cni.sock', help: 'unix socket where the twill CNI plugin hands its calls to the agent (warm state: much faster ADD and DEL); the plugin looks for it at /run/twill/cni.sock, or at $TWILL_CNI_SOCKET in the runtime\'s environment, and runs in-process when nobody answers there. "" or "off" disables it.' },
  { name: 'cni-data-dir', kind: 'string', arg: 'DIR', default: '/run/twill/ipam', help: 'the CNI plugin\'s address records (its dataDir); at start, addresses of pods whose network namespace is gone are released.' },
  { name: 'cni-timeout', kind: 'string', arg: 'DURATION', default: formatDuration(DEFAULT_TIMEOUT_MS), help: `deadline of each CNI call (1s to ${formatDuration(MAX_TIMEOUT_MS)}); past it the call fails with code 11 and an ADD is rolled back.` },
  { name: 'cni-socket-group', kind: 'string', arg: 'GID', default: '', help: 'numeric group whose members may use the CNI socket besides root (it becomes 0660); "" lets root only.' },
  { name: 'cni-conf-dir', kind: 'string', arg: 'DIR', default: '/etc/cni/net.d', help: 'the container runtime\'s CNI configuration directory: the dataDirs of its twill entries are reconciled at start too; "" or "off" skips it.' },
  { name: 'cni-workers', kind: 'string', arg: 'N', default: String(DEFAULT_MAX_THREADS), help: 'most threads that serve CNI calls in parallel, each with its own netlink sockets (1 to 64). The first call starts two, which then stay warm; more start when calls overlap (a call mostly waits in the kernel, so threads, not cores, bound parallel pods) and stop after 5 min idle.' },
  { name: 'bgp-asn', kind: 'string', arg: 'N', help: 'bgp backend: this host\'s AS number (eBGP to its top-of-rack router); default the network config\'s ASN.' },
  { name: 'bgp-router-id', kind: 'string', arg: 'IPv4', help: 'bgp backend: the BGP identifier (default: the public IP; required in an IPv6-only network, which has none).' },
  { name: 'bgp-peer', kind: 'repeated', arg: 'ADDR,asn=N[,password=S][,port=P][,multihop=H]', help: 'bgp backend: an external peer of this host (its top-of-rack router), added to the network config\'s Peers; repeat it, or separate peers with ";" in the environment variable.' },
  { name: 'bgp-listen', kind: 'string', arg: 'ADDR:PORT', help: 'bgp backend: where the speaker accepts sessions, ADDR:PORT or [IPv6]:PORT (default: the public IP, or the public IPv6 in an IPv6-only network, port 179).' },
  { name: 'bgp-speaker', kind: 'string', arg: 'builtin|gobgp', help: 'bgp backend: this host\'s BGP speaker, Twill\'s own or a gobgpd beside the agent (see --gobgp-api); default the network config\'s Speaker. Hosts of one cluster may differ.' },
  { name: 'gobgp-api', kind: 'string', arg: 'HOST:PORT|unix:///PATH', help: 'bgp backend with Speaker "gobgp": the gRPC API of the gobgpd that runs beside the agent (its --api-hosts), e.g. 127.0.0.1:50051 or unix:///run/gobgpd.sock.' },
  { name: 'resync-interval', kind: 'string', arg: 'DURATION', default: '5m', help: 'how often the backend compares the whole kernel state with the leases and repairs drift, as a safety net: an entry of Twill\'s deleted by hand is written again at once (kernel notifications), and the masquerading rules are checked at least every 10s; at least 100ms.' },
];

const MIN_LEASE_TTL_MS = 2000;
const MIN_RESYNC_MS = 100;
const ENV_PREFIX = 'TWILLD';

/**
 * Reads twilld's command line and TWILLD_* environment. --help and --version win over every
 * other flag (and are not checked against them). Throws InvalidArgumentError naming the flag
 * (or the environment variable) and the bad value.
 */
export function parseAgentFlags(argv: readonly string[], env: NodeJS.ProcessEnv): AgentCommand {
  const cli = readCommandLine(argv, env, { program: 'twilld', envPrefix: ENV_PREFIX, flags: AGENT_FLAGS });
  if (cli.help) return { kind: 'help', text: agentHelpText() };
  if (cli.version) return { kind: 'version', text: `twilld ${twillVersion()}\n` };
  return { kind: 'run', flags: validate(new FlagValues(cli.raw)) };
}

function validate(v: FlagValues): AgentFlags {
  const ifaces = v.list('iface');
  const subnetFile = v.required('subnet-file');
  const ttl = v.required('subnet-lease-ttl');
  const healthz = v.required('healthz-addr');
  const resync = v.required('resync-interval');
  const logLevel = v.required('log-level');
  const cniSocket = v.required('cni-socket');
  const cniDataDir = v.required('cni-data-dir');
  const cniWorkers = v.required('cni-workers');
  const cniTimeout = v.required('cni-timeout');
  const cniSocketGroup = v.required('cni-socket-group');
  const cniConfDir = v.required('cni-conf-dir');
  const flags: AgentFlags = {
    ...parseEtcdFlags(v),
    ifaces: Object.freeze(ifaces.items.map((i) => iface(i, ifaces.what))),
    publicIp: v.optional('public-ip', publicIp),
    publicIpv6: v.optional('public-ipv6', publicIpv6),
    subnetFile: absolutePath(subnetFile.value, subnetFile.what),
    subnetLeaseTtlMs: leaseTtl(ttl.value, ttl.what),
    ipMasq: v.bool('ip-masq'),
    healthzAddr: healthzAddr(healthz.value, healthz.what),
    metrics: v.bool('metrics'),
    logLevel: parseLogLevel(logLevel.value, logLevel.what),
    resyncIntervalMs: atLeast(parseDuration(resync.value, resync.what), MIN_RESYNC_MS, resync.value, resync.what),
    cniSocket: cniSocket.value === '' || cniSocket.value === 'off' ? undefined : absolutePath(cniSocket.value, cniSocket.what),
    cniDataDir: absolutePath(cniDataDir.value, cniDataDir.what),
    cniWorkers: integerInRange(cniWorkers.value, cniWorkers.what, 1, 64),
    cniTimeoutMs: atMost(atLeast(parseDuration(cniTimeout.value, cniTimeout.what), 1000, cniTimeout.value, cniTimeout.what), MAX_TIMEOUT_MS, cniTimeout.value, cniTimeout.what),
    cniSocketGroup: cniSocketGroup.value === '' ? undefined : integerInRange(cniSocketGroup.value, cniSocketGroup.what, 0, 0xfffffffe),
    cniConfDir: cniConfDir.value === '' || cniConfDir.value === 'off' ? undefined : absolutePath(cniConfDir.value, cniConfDir.what),
    bgp: bgpSettings(v),
  };
  return Object.freeze(flags);
}

/** The --bgp-* flags, checked by the bgp backend's own parsers so errors read the same as the network config's. */
function bgpSettings(v: FlagValues): HostBgpSettings {
  const asn = v.optional('bgp-asn');
  const listen = v.optional('bgp-listen');
  const gobgpApi = v.optional('gobgp-api');
  const speaker = v.optional('bgp-speaker');
  return Object.freeze({
    asn: asn === undefined ? undefined : parseAsn(/^\d+$/.test(asn) ? Number(asn) : asn, '--bgp-asn'),
    routerId: v.optional('bgp-router-id', publicIp),
    peers: Object.freeze(v.all('bgp-peer').items.flatMap((item) => item.split(';')).filter((p) => p.trim() !== '').map(parsePeerFlag)),
    listen: listen === undefined ? undefined : parseListenFlag(listen),
    speaker: speaker === undefined ? undefined : parseSpeaker(speaker, '--bgp-speaker'),
    gobgpApi: gobgpApi === undefined ? undefined : gobgpApiAddress(gobgpApi),
  });
}

/** gobgpd's --api-hosts forms: HOST:PORT, or unix:///path for a socket. */
function gobgpApiAddress(value: string): string {
  if (value.startsWith('unix://')) return `unix://${absolutePath(value.slice('unix://'.length), '--gobgp-api')}`;
  return formatHostPort(parseHostPort(value, '--gobgp-api'));
}

export function envName(flag: string): string {
  return envVar(ENV_PREFIX, flag);
}

function iface(value: string, what: string): string {
  if (isIPv4(value)) return value;
  if (isIPv6(value) && !value.includes('%')) return parseIp(value).text;
  try {
    return validateIfname(value);
  } catch (err) {
    throw new InvalidArgumentError(what, value, `neither an IP address nor an interface name (${(err as Error).message})`);
  }
}

function publicIp(value: string, what: string): string {
  if (!isIPv4(value)) throw new InvalidArgumentError(what, value, 'not an IPv4 address');
  return value;
}

function publicIpv6(value: string, what: string): string {
  if (!isIPv6(value) || value.includes('%')) throw new InvalidArgumentError(what, value, 'not an IPv6 address');
  const text = parseIp(value).text;
  const problem = ipv6EndpointProblem(text);
  if (problem !== undefined) throw new InvalidArgumentError(what, value, `${problem}: other hosts cannot reach it`);
  return text;
}

function absolutePath(value: string, what: string): string {
  if (!value.startsWith('/') || value.endsWith('/')) throw new InvalidArgumentError(what, value, 'must be an absolute path to a file');
  return value;
}

function leaseTtl(value: string, what: string): number {
  const ms = atLeast(parseDuration(value, what), MIN_LEASE_TTL_MS, value, what);
  if (ms % 1000 !== 0) throw new InvalidArgumentError(what, value, 'must be whole seconds (etcd lease TTLs count in seconds)');
  return ms;
}

function atLeast(ms: number, min: number, value: string, what: string): number {
  if (ms < min) throw new InvalidArgumentError(what, value, `must be at least ${formatDuration(min)}`);
  return ms;
}

function atMost(ms: number, max: number, value: string, what: string): number {
  if (ms > max) throw new InvalidArgumentError(what, value, `must be at most ${formatDuration(max)}`);
  return ms;
}

function healthzAddr(value: string, what: string): string | undefined {
  if (value === '' || value === 'off') return undefined;
  return formatHostPort(parseHostPort(value, what));
}

/** The flags as a log line may show them: the etcd password replaced. */
export function flagsForLog(flags: AgentFlags): Record<string, unknown> {
  const bgp = { ...flags.bgp, peers: flags.bgp.peers.map((p) => ({ ...p, password: p.password === undefined ? undefined : '<hidden>' })) };
  return { ...hidePassword(flags), bgp };
}

/** twilld --help: every flag with its argument, environment variable and default. */
export function agentHelpText(): string {
  return helpText('Usage: twilld [options]', [
    'twilld is Twill\'s node agent. It leases this node\'s pod subnet in etcd (flannel\'s key layout and lease records), writes the subnet file for the CNI plugin and programs the overlay to every other node\'s subnet.',
    'Every option can also be set by the environment variable shown with it; the command line wins over the environment, and an empty variable counts as unset. Durations read like 24h, 90m, 1h30m, 10s or 500ms; a bare number means seconds. Boolean flags take --flag, --flag=false or --no-flag.',
  ], AGENT_FLAGS, ENV_PREFIX);
}

/** The README's flag reference (`npm run docs:flags` writes it; test/unit/docs.test.ts compares). */
export function agentFlagTable(): string {
  return flagTableMarkdown(AGENT_FLAGS, ENV_PREFIX);
}
