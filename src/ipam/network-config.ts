import { InvalidArgumentError } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import { booleanField, fail, foldKeys, integerField, isObject, type FieldGetter, type SubnetRange } from './config-fields.js';
import { blockSize, contains, formatIpv4Prefix, intToIpv4, ipv4ToInt, parseIpv4Prefix, specialRangeOf, type Ipv4Prefix } from './ipv4.js';
import { parseIpv6Part } from './network-config-ipv6.js';

export type { SubnetRange } from './config-fields.js';

/**
 * The cluster's network configuration, stored as JSON at <prefix>/config in flannel's format
 * (flannel pkg/subnet/config.go):
 *
 *   {"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan", "VNI": 1}}
 *   {"Network": "10.244.0.0/16", "EnableIPv6": true, "IPv6Network": "fc00::/48", ...}   dual-stack
 *   {"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fc00::/48", ...}           IPv6-only
 *
 * Parsing validates and fills in flannel's defaults, and returns a new frozen object; the input
 * is never modified. Keys match case-insensitively, as Go's encoding/json does. Unlike flannel,
 * an unknown key is an error, so a typo ("SubnetLenght") is reported instead of ignored. The
 * fields of a disabled family are ignored, as flannel ignores them.
 *
 * A config with IPv4 (the default) has the IPv4 fields at the top, as it always had, and `ipv6`
 * when dual-stack; an IPv6-only config has only `ipv6` (hasIpv4() tells them apart).
 */
export type NetworkConfig = Ipv4NetworkConfig | Ipv6OnlyNetworkConfig;

interface ConfigCommon {
  readonly backend: BackendConfig;
  readonly enableNFTables: boolean;
}

/** EnableIPv4 true (the default): the IPv4 network, and the IPv6 one when EnableIPv6 is true too. */
export interface Ipv4NetworkConfig extends SubnetRange, ConfigCommon {
  readonly ipv6?: SubnetRange | undefined;
}

/** EnableIPv4 false, EnableIPv6 true. */
export interface Ipv6OnlyNetworkConfig extends ConfigCommon {
  readonly network?: undefined;
  readonly subnetLen?: undefined;
  readonly subnetMin?: undefined;
  readonly subnetMax?: undefined;
  readonly ipv6: SubnetRange;
}

export interface BackendConfig {
  readonly type: string;
  /** The backend's own options, as the backend parsed and validated them. */
  readonly options: unknown;
}

/** Validates one backend's options; throws InvalidArgumentError naming the bad option. */
export type BackendOptionsParser = (type: string, options: Record<string, unknown>) => unknown;

const KNOWN_KEYS = ['Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'Backend', 'EnableIPv4', 'EnableIPv6', 'EnableNFTables',
  'IPv6Network', 'IPv6SubnetLen', 'IPv6SubnetMin', 'IPv6SubnetMax'] as const;

export const DEFAULT_BACKEND = 'vxlan';

export function hasIpv4(config: NetworkConfig): config is Ipv4NetworkConfig {
  return config.network !== undefined;
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

/** Network, SubnetLen, SubnetMin, SubnetMax of a config with IPv4. */
function parseIpv4Part(get: FieldGetter): SubnetRange {
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
  return {
    network: formatIpv4Prefix(network),
    subnetLen,
    subnetMin: `${intToIpv4(subnetMin)}/${subnetLen}`,
    subnetMax: `${intToIpv4(subnetMax)}/${subnetLen}`,
  };
}

function parseBackend(get: FieldGetter, parseOptions: BackendOptionsParser): BackendConfig {
  const backendRaw = get('Backend') ?? { Type: DEFAULT_BACKEND };
  if (!isObject(backendRaw)) fail('Backend', backendRaw, 'must be an object such as {"Type": "vxlan"}');
  const backendFields = foldKeys(backendRaw, 'Backend key');
  const typeValue = backendFields.get('type')?.value ?? DEFAULT_BACKEND;
  if (typeof typeValue !== 'string' || typeValue === '') fail('Backend.Type', typeValue, 'must be a backend name such as "vxlan"');
  const options: Record<string, unknown> = {};
  for (const [folded, { key, value }] of backendFields) if (folded !== 'type') options[key] = value;
  return Object.freeze({ type: typeValue, options: parseOptions(typeValue, options) });
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

export function parseNetworkConfig(raw: unknown, parseOptions: BackendOptionsParser): NetworkConfig {
  if (!isObject(raw)) throw new InvalidArgumentError('network config', raw, 'must be a JSON object');
  const fields = foldKeys(raw, 'key');
  const known: readonly string[] = KNOWN_KEYS.map((k) => k.toLowerCase());
  for (const { key } of fields.values()) {
    if (!known.includes(key.toLowerCase())) fail('key', key, `is not a known field (known: ${KNOWN_KEYS.join(', ')})`);
  }
  const get: FieldGetter = (name) => fields.get(name.toLowerCase())?.value;

  const enableIpv4 = get('EnableIPv4') === undefined || booleanField(get('EnableIPv4'), 'EnableIPv4');
  const enableIpv6 = get('EnableIPv6') !== undefined && booleanField(get('EnableIPv6'), 'EnableIPv6');
  if (!enableIpv4 && !enableIpv6) fail('EnableIPv4', false, 'and EnableIPv6 are both false: the config enables no address family');

  const common = (): ConfigCommon => ({
    backend: parseBackend(get, parseOptions),
    enableNFTables: get('EnableNFTables') === undefined ? false : booleanField(get('EnableNFTables'), 'EnableNFTables'),
  });
  if (!enableIpv4) return Object.freeze({ ipv6: parseIpv6Part(get), ...common() });
  const ipv4 = parseIpv4Part(get);
  const ipv6 = enableIpv6 ? parseIpv6Part(get) : undefined;
  return Object.freeze({ ...ipv4, ...common(), ...(ipv6 && { ipv6 }) });
}

/** How many IPv4 subnets SubnetMin..SubnetMax holds (0 in an IPv6-only config). */
export function leasableSubnetCount(config: NetworkConfig): number {
  if (!hasIpv4(config)) return 0;
  const min = parseIpv4Prefix(config.subnetMin, 'SubnetMin');
  const max = parseIpv4Prefix(config.subnetMax, 'SubnetMax');
  return (max.base - min.base) / blockSize(config.subnetLen) + 1;
}
