import { InvalidArgumentError } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import { blockSize, contains, formatIpv4Prefix, intToIpv4, ipv4ToInt, parseIpv4Prefix, specialRangeOf, type Ipv4Prefix } from './ipv4.js';

/**
 * The cluster's network configuration, stored as JSON at <prefix>/config in flannel's format
 * (flannel pkg/subnet/config.go):
 *
 *   {"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan", "VNI": 1}}
 *
 * Parsing validates and fills in flannel's defaults, and returns a new frozen object; the input
 * is never modified. Keys match case-insensitively, as Go's encoding/json does. Unlike flannel,
 * an unknown key is an error, so a typo ("SubnetLenght") is reported instead of ignored.
 */
export interface NetworkConfig {
  /** "10.244.0.0/16" */
  readonly network: string;
  readonly subnetLen: number;
  /** First and last leasable subnet, e.g. "10.244.1.0/24" and "10.244.255.0/24". */
  readonly subnetMin: string;
  readonly subnetMax: string;
  readonly backend: BackendConfig;
  readonly enableNFTables: boolean;
}

export interface BackendConfig {
  readonly type: string;
  /** The backend's own options, as the backend parsed and validated them. */
  readonly options: unknown;
}

/** Validates one backend's options; throws InvalidArgumentError naming the bad option. */
export type BackendOptionsParser = (type: string, options: Record<string, unknown>) => unknown;

/** Twill speaks IPv4 today; these flannel keys are accepted only with values that keep it so. */
const KNOWN_KEYS = ['network', 'subnetlen', 'subnetmin', 'subnetmax', 'backend', 'enableipv4', 'enableipv6', 'enablenftables',
  'ipv6network', 'ipv6subnetlen', 'ipv6subnetmin', 'ipv6subnetmax'] as const;

export const DEFAULT_BACKEND = 'vxlan';

function fail(field: string, value: unknown, reason: string): never {
  throw new InvalidArgumentError(`network config ${field}`, value, reason);
}

/** Lower-cases the keys of an object, refusing two spellings of one key. */
function foldKeys(obj: Record<string, unknown>, where: string): Map<string, { key: string; value: unknown }> {
  const out = new Map<string, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(obj)) {
    const folded = key.toLowerCase();
    const prior = out.get(folded);
    if (prior) fail(where, key, `given twice (as "${prior.key}" and "${key}")`);
    out.set(folded, { key, value });
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function integerField(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(field, value, `must be an integer ${min}..${max}`);
  }
  return value;
}

function booleanField(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') fail(field, value, 'must be true or false');
  return value;
}

function subnetBoundField(value: unknown, field: string, network: Ipv4Prefix, subnetLen: number): number {
  if (typeof value !== 'string') fail(field, value, 'must be an IPv4 address string such as "10.244.1.0"');
  let ip: number;
  try {
    const parsed = parseIp(value);
    if (parsed.family !== 4) throw new Error('not IPv4');
    ip = ipv4ToInt(parsed.bytes);
  } catch {
    fail(field, value, 'is not an IPv4 address');
  }
  if (ip % blockSize(subnetLen) !== 0) fail(field, value, `is not on a /${subnetLen} subnet boundary`);
  if (!contains(network, { base: ip, length: subnetLen })) fail(field, value, `is outside Network ${formatIpv4Prefix(network)}`);
  return ip;
}

/**
 * flannel accepts any Network, and every host then routes leases of it: with 0.0.0.0/0 or a /4
 * a lease can replace the default route or a connected route and cut the host off; loopback,
 * link-local and multicast addresses cannot be pod addresses at all. A Network that contains a
 * host's own underlay is checked by the agent at start, where the underlay is known.
 */
function refuseDangerousNetwork(network: Ipv4Prefix, text: string): void {
  if (network.length === 0) fail('Network', text, 'is the default route: pod routes inside it would replace the hosts\' own routes');
  const special = specialRangeOf(network);
  if (special !== undefined) fail('Network', text, `overlaps ${special}, which cannot hold pod addresses`);
  if (network.length < 8) fail('Network', text, 'is shorter than /8: that much of the address space cannot be a pod network without covering the hosts\' own networks');
}

/** Parses and validates the JSON text at <prefix>/config. */
export function parseNetworkConfigText(text: string, parseBackend: BackendOptionsParser): NetworkConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError('network config', text.length > 200 ? `${text.slice(0, 200)}...` : text,
      `is not valid JSON (${(err as Error).message})`);
  }
  return parseNetworkConfig(raw, parseBackend);
}

export function parseNetworkConfig(raw: unknown, parseBackend: BackendOptionsParser): NetworkConfig {
  if (!isObject(raw)) throw new InvalidArgumentError('network config', raw, 'must be a JSON object');
  const fields = foldKeys(raw, 'key');
  for (const { key } of fields.values()) {
    if (!(KNOWN_KEYS as readonly string[]).includes(key.toLowerCase())) {
      fail('key', key, `is not a known field (known: Network, SubnetLen, SubnetMin, SubnetMax, Backend, EnableIPv4, EnableIPv6, EnableNFTables)`);
    }
  }
  const get = (name: string): unknown => fields.get(name.toLowerCase())?.value;

  if (get('EnableIPv4') !== undefined && !booleanField(get('EnableIPv4'), 'EnableIPv4')) {
    fail('EnableIPv4', false, 'Twill needs an IPv4 network (IPv6-only clusters are not supported yet)');
  }
  if (get('EnableIPv6') !== undefined && booleanField(get('EnableIPv6'), 'EnableIPv6')) {
    fail('EnableIPv6', true, 'dual-stack is not supported yet');
  }

  const networkText = get('Network');
  if (networkText === undefined) fail('Network', undefined, 'is required, e.g. "10.244.0.0/16"');
  if (typeof networkText !== 'string') fail('Network', networkText, 'must be a string such as "10.244.0.0/16"');
  const network = parseIpv4Prefix(networkText, 'network config Network');
  // flannel: the network must be at least a /28, subnets at most /30.
  if (network.length > 28) fail('Network', networkText, 'must be a /28 or larger');
  refuseDangerousNetwork(network, networkText);

  const defaultLen = network.length <= 22 ? 24 : network.length + 2;
  const subnetLen = get('SubnetLen') === undefined ? defaultLen : integerField(get('SubnetLen'), 'SubnetLen', network.length + 1, 30);
  const size = blockSize(subnetLen);
  const firstSubnet = network.base;
  const lastSubnet = network.base + blockSize(network.length) - size;

  // flannel skips the network's first subnet by default (its .0 address looks like the network's).
  const subnetMin = get('SubnetMin') === undefined ? Math.min(firstSubnet + size, lastSubnet)
    : subnetBoundField(get('SubnetMin'), 'SubnetMin', network, subnetLen);
  const subnetMax = get('SubnetMax') === undefined ? lastSubnet : subnetBoundField(get('SubnetMax'), 'SubnetMax', network, subnetLen);
  if (subnetMin > subnetMax) fail('SubnetMin', intToIpv4(subnetMin), `is above SubnetMax ${intToIpv4(subnetMax)}`);

  const backendRaw = get('Backend') ?? { Type: DEFAULT_BACKEND };
  if (!isObject(backendRaw)) fail('Backend', backendRaw, 'must be an object such as {"Type": "vxlan"}');
  const backendFields = foldKeys(backendRaw, 'Backend key');
  const typeValue = backendFields.get('type')?.value ?? DEFAULT_BACKEND;
  if (typeof typeValue !== 'string' || typeValue === '') fail('Backend.Type', typeValue, 'must be a backend name such as "vxlan"');
  const options: Record<string, unknown> = {};
  for (const [folded, { key, value }] of backendFields) if (folded !== 'type') options[key] = value;

  return Object.freeze({
    network: formatIpv4Prefix(network),
    subnetLen,
    subnetMin: `${intToIpv4(subnetMin)}/${subnetLen}`,
    subnetMax: `${intToIpv4(subnetMax)}/${subnetLen}`,
    backend: Object.freeze({ type: typeValue, options: parseBackend(typeValue, options) }),
    enableNFTables: get('EnableNFTables') === undefined ? false : booleanField(get('EnableNFTables'), 'EnableNFTables'),
  });
}

/** How many subnets SubnetMin..SubnetMax holds. */
export function leasableSubnetCount(config: NetworkConfig): number {
  const min = parseIpv4Prefix(config.subnetMin, 'SubnetMin');
  const max = parseIpv4Prefix(config.subnetMax, 'SubnetMax');
  return (max.base - min.base) / blockSize(config.subnetLen) + 1;
}
