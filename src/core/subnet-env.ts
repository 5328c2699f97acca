import { InvalidArgumentError, TwillError } from './errors.js';
import { formatCidr, formatIp, networkOf, parseCidr, parsePrefix, type Cidr } from './ip.js';

// flannel's subnet.env (flannel.md §4), the hand-over from the agent to the CNI plugin and, on
// restart, from the agent to itself (the previous lease is tried first). Pure: the agent's
// subnet-file.ts does the I/O, and the CNI plugin will parse the same text.
//
//   FLANNEL_NETWORK=10.244.0.0/16      the whole overlay network
//   FLANNEL_SUBNET=10.244.3.1/24       this node's lease: first usable address, lease prefix length
//   FLANNEL_IPV6_NETWORK=...           optional (dual-stack)
//   FLANNEL_IPV6_SUBNET=...            optional (dual-stack)
//   FLANNEL_MTU=1450
//   FLANNEL_IPMASQ=true

//   An IPv6-only cluster (network config EnableIPv4: false) has no FLANNEL_NETWORK and no
//   FLANNEL_SUBNET: only the two IPv6 variables, FLANNEL_MTU and FLANNEL_IPMASQ (Ipv6OnlySubnetEnv).

/** A subnet.env with IPv4 (single-stack IPv4 or dual-stack): what every existing reader expects. */
export interface SubnetEnv {
  /** FLANNEL_NETWORK, a prefix such as "10.244.0.0/16". */
  readonly network: string;
  /** FLANNEL_SUBNET: the lease's first usable address with the lease's prefix, e.g. "10.244.3.1/24". */
  readonly subnet: string;
  readonly ipv6Network?: string;
  /** FLANNEL_IPV6_SUBNET, like FLANNEL_SUBNET: "fc00:0:0:3::1/64". */
  readonly ipv6Subnet?: string;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/** A subnet.env of an IPv6-only cluster: no FLANNEL_NETWORK, no FLANNEL_SUBNET. */
export interface Ipv6OnlySubnetEnv {
  readonly network?: undefined;
  readonly subnet?: undefined;
  readonly ipv6Network: string;
  readonly ipv6Subnet: string;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/** Either shape: what a reader that copes with IPv6-only clusters (the CNI plugin) gets. */
export type AnySubnetEnv = SubnetEnv | Ipv6OnlySubnetEnv;

/** parseSubnetEnv's option: accept a file without the IPv4 variables when it has the IPv6 ones. */
export interface ParseSubnetEnvOptions {
  readonly allowIpv6Only: true;
}

/** True when `env` has the IPv4 variables. */
export function hasIpv4(env: AnySubnetEnv): env is SubnetEnv {
  return env.network !== undefined && env.subnet !== undefined;
}

/**
 * subnet.env is missing a variable or holds a bad value. `variable` names it (FLANNEL_MTU, ...);
 * the message starts with the source (the file's path), e.g.
 * `/run/twill/subnet.env: invalid FLANNEL_MTU "abc": not an integer`.
 */
export class SubnetEnvError extends TwillError {
  readonly variable: string;

  constructor(source: string, variable: string, detail: string) {
    super('ESUBNET_ENV', `${source}: ${detail}`);
    this.variable = variable;
  }
}

function missing(source: string, variable: string, why = ''): SubnetEnvError {
  return new SubnetEnvError(source, variable, `${variable} is missing${why}`);
}

function invalid(source: string, variable: string, value: unknown, reason: string): SubnetEnvError {
  return new SubnetEnvError(source, variable, `invalid ${variable} ${JSON.stringify(value)}: ${reason}`);
}

/** IPv4 needs at least 68 bytes (RFC 791); a jumbo frame is at most 65535. */
const MTU_MIN = 68;
const MTU_MAX = 65535;

/**
 * The subnet.env for a lease, as flannel writes it: FLANNEL_SUBNET is the lease's network
 * address plus one ("10.244.3.0/24" gives "10.244.3.1/24"), the gateway the CNI bridge takes;
 * FLANNEL_IPV6_SUBNET likewise ("fc00:0:0:3::/64" gives "fc00:0:0:3::1/64"). An IPv6-only
 * cluster passes undefined for `network` and `leaseSubnet` (both, and then `ipv6` is required).
 */
export function subnetEnvFromLease(
  network: string,
  leaseSubnet: string,
  mtu: number,
  ipMasq: boolean,
  ipv6?: { readonly network: string; readonly leaseSubnet: string },
): SubnetEnv;
export function subnetEnvFromLease(
  network: undefined,
  leaseSubnet: undefined,
  mtu: number,
  ipMasq: boolean,
  ipv6: { readonly network: string; readonly leaseSubnet: string },
): Ipv6OnlySubnetEnv;
export function subnetEnvFromLease(
  network: string | undefined,
  leaseSubnet: string | undefined,
  mtu: number,
  ipMasq: boolean,
  ipv6?: { readonly network: string; readonly leaseSubnet: string },
): AnySubnetEnv;
export function subnetEnvFromLease(
  network: string | undefined,
  leaseSubnet: string | undefined,
  mtu: number,
  ipMasq: boolean,
  ipv6?: { readonly network: string; readonly leaseSubnet: string },
): AnySubnetEnv {
  const env = {
    ...(network !== undefined && { network }),
    ...(leaseSubnet !== undefined && { subnet: firstUsable(leaseSubnet) }),
    ...(ipv6 && { ipv6Network: ipv6.network, ipv6Subnet: firstUsable(ipv6.leaseSubnet) }),
    mtu,
    ipMasq,
  };
  return validated(env, 'subnet.env', true);
}

/** The text of subnet.env, one VAR=value per line. Validates first, so a bad value is never written. */
export function formatSubnetEnv(env: AnySubnetEnv): string {
  const e = validated(env, 'subnet.env', true);
  let out = hasIpv4(e) ? `FLANNEL_NETWORK=${e.network}\nFLANNEL_SUBNET=${e.subnet}\n` : '';
  if (e.ipv6Network !== undefined && e.ipv6Subnet !== undefined) {
    out += `FLANNEL_IPV6_NETWORK=${e.ipv6Network}\nFLANNEL_IPV6_SUBNET=${e.ipv6Subnet}\n`;
  }
  return `${out}FLANNEL_MTU=${e.mtu}\nFLANNEL_IPMASQ=${e.ipMasq}\n`;
}

/**
 * Reads subnet.env text. Blank lines, `#` comments, `export ` prefixes and other variables are
 * ignored; the last assignment of a variable wins (as when a shell sources the file). `source`
 * (e.g. the file's path) starts every error message. Without `options`, the IPv4 variables are
 * required (as every reader but the CNI plugin expects); with `{ allowIpv6Only: true }` a file
 * with only the IPv6 ones is read too.
 */
export function parseSubnetEnv(text: string, source?: string): SubnetEnv;
export function parseSubnetEnv(text: string, source: string | undefined, options: ParseSubnetEnvOptions): AnySubnetEnv;
export function parseSubnetEnv(text: string, source = 'subnet.env', options?: ParseSubnetEnvOptions): AnySubnetEnv {
  const vars = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim().replace(/^export\s+/, '');
    const eq = line.indexOf('=');
    if (line === '' || line.startsWith('#') || eq < 0) continue;
    vars.set(line.slice(0, eq).trim(), unquote(line.slice(eq + 1).trim()));
  }
  const need = (name: string): string => {
    const value = vars.get(name);
    if (value === undefined || value === '') throw missing(source, name);
    return value;
  };
  // An empty IPv6 variable counts as absent: single-stack.
  const v6Network = vars.get('FLANNEL_IPV6_NETWORK') || undefined;
  const v6Subnet = vars.get('FLANNEL_IPV6_SUBNET') || undefined;
  // IPv6-only: neither IPv4 variable (an empty one counts as absent), and allowed.
  const v4Network = vars.get('FLANNEL_NETWORK') || undefined;
  const v4Subnet = vars.get('FLANNEL_SUBNET') || undefined;
  const ipv6Only = options?.allowIpv6Only === true && v4Network === undefined && v4Subnet === undefined && (v6Network !== undefined || v6Subnet !== undefined);
  const env = {
    ...(!ipv6Only && { network: need('FLANNEL_NETWORK'), subnet: need('FLANNEL_SUBNET') }),
    ...(v6Network !== undefined && { ipv6Network: v6Network }),
    ...(v6Subnet !== undefined && { ipv6Subnet: v6Subnet }),
    mtu: parseMtu(need('FLANNEL_MTU'), source),
    ipMasq: parseBool(need('FLANNEL_IPMASQ'), source),
  };
  return validated(env, source, options?.allowIpv6Only === true);
}

function unquote(value: string): string {
  // Tolerates values a person quoted by hand; flannel never writes quotes.
  const q = value[0];
  return value.length >= 2 && (q === '"' || q === "'") && value.endsWith(q) ? value.slice(1, -1) : value;
}

function parseMtu(text: string, source: string): number {
  if (!/^\d{1,5}$/.test(text)) throw invalid(source, 'FLANNEL_MTU', text, 'not an integer');
  return Number(text);
}

function parseBool(text: string, source: string): boolean {
  if (text === 'true' || text === 'false') return text === 'true';
  throw invalid(source, 'FLANNEL_IPMASQ', text, 'must be true or false');
}

interface LooseSubnetEnv {
  readonly network?: string | undefined;
  readonly subnet?: string | undefined;
  readonly ipv6Network?: string | undefined;
  readonly ipv6Subnet?: string | undefined;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/**
 * Checks every field and returns a frozen copy with the prefixes in canonical text form. The
 * IPv4 pair is required unless `ipv6Only` allows its absence and the IPv6 pair is there.
 */
function validated(env: SubnetEnv, source: string): SubnetEnv;
function validated(env: LooseSubnetEnv, source: string, ipv6Only: boolean): AnySubnetEnv;
function validated(env: LooseSubnetEnv, source: string, ipv6Only = false): AnySubnetEnv {
  const hasV6 = env.ipv6Network !== undefined || env.ipv6Subnet !== undefined;
  let v4: { network: string; subnet: string } | undefined;
  if (!ipv6Only || !hasV6 || env.network !== undefined || env.subnet !== undefined) {
    if (env.network === undefined) throw missing(source, 'FLANNEL_NETWORK');
    if (env.subnet === undefined) throw missing(source, 'FLANNEL_SUBNET');
    const network = prefix(env.network, 4, 'FLANNEL_NETWORK', source);
    const subnet = hostInNetwork(env.subnet, network, 'FLANNEL_SUBNET', 'FLANNEL_NETWORK', source);
    v4 = { network: formatCidr(network), subnet: formatCidr(subnet) };
  }
  let v6: { ipv6Network: string; ipv6Subnet: string } | undefined;
  if (hasV6) {
    if (env.ipv6Network === undefined) throw missing(source, 'FLANNEL_IPV6_NETWORK', ' (the two IPv6 variables come together)');
    if (env.ipv6Subnet === undefined) throw missing(source, 'FLANNEL_IPV6_SUBNET', ' (the two IPv6 variables come together)');
    const n6 = prefix(env.ipv6Network, 6, 'FLANNEL_IPV6_NETWORK', source);
    const s6 = hostInNetwork(env.ipv6Subnet, n6, 'FLANNEL_IPV6_SUBNET', 'FLANNEL_IPV6_NETWORK', source);
    v6 = { ipv6Network: formatCidr(n6), ipv6Subnet: formatCidr(s6) };
  }
  if (!Number.isInteger(env.mtu) || env.mtu < MTU_MIN || env.mtu > MTU_MAX) {
    throw invalid(source, 'FLANNEL_MTU', env.mtu, `must be an integer ${MTU_MIN}..${MTU_MAX}`);
  }
  if (typeof env.ipMasq !== 'boolean') throw invalid(source, 'FLANNEL_IPMASQ', env.ipMasq, 'must be a boolean');
  if (v4 === undefined) return Object.freeze({ ...v6!, mtu: env.mtu, ipMasq: env.ipMasq });
  return Object.freeze({ ...v4, ...v6, mtu: env.mtu, ipMasq: env.ipMasq });
}

function prefix(text: string, family: 4 | 6, variable: string, source: string): Cidr {
  let cidr: Cidr;
  try {
    cidr = parsePrefix(text, variable);
  } catch (err) {
    // parsePrefix's message already reads `invalid <variable> "<value>": <reason>`.
    throw new SubnetEnvError(source, variable, (err as Error).message);
  }
  if (cidr.address.family !== family) throw invalid(source, variable, text, `not an IPv${family} prefix`);
  return cidr;
}

/** FLANNEL_SUBNET: an address with its lease prefix, lying inside the network. */
function hostInNetwork(text: string, network: Cidr, variable: string, networkVariable: string, source: string): Cidr {
  let cidr: Cidr;
  try {
    cidr = parseCidr(text, variable);
  } catch (err) {
    throw new SubnetEnvError(source, variable, (err as Error).message);
  }
  const inside =
    cidr.address.family === network.address.family &&
    cidr.prefixLength >= network.prefixLength &&
    networkOf({ address: cidr.address, prefixLength: network.prefixLength }).bytes.equals(network.address.bytes);
  if (!inside) throw invalid(source, variable, text, `not inside ${networkVariable} ${formatCidr(network)}`);
  return cidr;
}

/** "10.244.3.0/24" -> "10.244.3.1/24": the lease's network address plus one, same prefix length. */
function firstUsable(leaseSubnet: string): string {
  const lease = parsePrefix(leaseSubnet, 'lease subnet');
  const hostBits = lease.address.bytes.length * 8 - lease.prefixLength;
  // A /31 or /32 (/127, /128) has no room for pods after the network address and the gateway.
  if (hostBits < 2) throw new InvalidArgumentError('lease subnet', leaseSubnet, 'too small: a lease needs room for a gateway and pods');
  const bytes = Buffer.from(networkOf(lease).bytes);
  bytes[bytes.length - 1]! += 1; // the network address ends in a 0 bit, so this never carries
  return `${formatIp(bytes)}/${lease.prefixLength}`;
}
