import { parseIp } from '../core/ip.js';
import { parseMac } from '../core/mac.js';
import { CniCode, CniError } from './spec/errors.js';
import { readResult, type CniResult } from './spec/result.js';
import { requireSupportedVersion } from './spec/versions.js';

export const DEFAULT_SUBNET_FILE = '/run/twill/subnet.env';
/** Under /run: a reboot, which also ends every pod, starts the allocator empty (no leaks; cni.md §6). */
export const DEFAULT_DATA_DIR = '/run/twill/ipam';
export const DEFAULT_BRIDGE = 'cni0';

/** twill's network configuration: its own keys, with the defaults an existing flannel user expects. */
export interface TwillNetConf {
  readonly cniVersion: string;
  readonly name: string;
  readonly subnetFile: string;
  readonly bridge: string;
  /** Undefined: FLANNEL_MTU from the subnet file. */
  readonly mtu: number | undefined;
  readonly hairpinMode: boolean;
  readonly isDefaultGateway: boolean;
  /** Undefined: the opposite of FLANNEL_IPMASQ (masquerade here only when the agent does not). */
  readonly ipMasq: boolean | undefined;
  readonly forceAddress: boolean;
  readonly dataDir: string;
  /**
   * runtimeConfig.ips (capability "ips"), then args.cni.ips, then CNI_ARGS IP= (CONVENTIONS.md):
   * at most one address per family (IPv4 or IPv6). Whether each lies in the host's lease of its
   * family is the allocator's to check.
   */
  readonly requestedIps: readonly string[];
  /** runtimeConfig.mac (capability "mac"), then args.cni.mac, then CNI_ARGS MAC=. */
  readonly mac: string | undefined;
  readonly prevResult: (CniResult & Record<string, unknown>) | undefined;
  /** GC: `cni.dev/valid-attachments` (or its older name `cni.dev/attachments`; libcni sends both). */
  readonly validAttachments: readonly { readonly containerId: string; readonly ifname: string }[] | undefined;
}

/** CNI network names become a directory name under dataDir (host-local does the same). */
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function bad(key: string, value: unknown, why: string): CniError {
  return new CniError(CniCode.INVALID_CONFIG, `invalid network config: "${key}" ${JSON.stringify(value)} ${why}`);
}

function optional<T>(conf: Json, key: string, type: 'string' | 'boolean' | 'number'): T | undefined {
  const v = conf[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== type) throw bad(key, v, `must be a ${type}`);
  return v as T;
}

/** Parses stdin as JSON: code 6 when it is not a JSON object. */
export function decodeConfig(stdin: Buffer | string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof stdin === 'string' ? stdin : stdin.toString('utf8'));
  } catch (err) {
    throw new CniError(CniCode.DECODE_FAILURE, `network config on stdin is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new CniError(CniCode.DECODE_FAILURE, 'network config on stdin must be a JSON object');
  return parsed;
}

function requestedIps(conf: Json, cniArgs: ReadonlyMap<string, string>): string[] {
  const runtime = isObject(conf.runtimeConfig) ? conf.runtimeConfig.ips : undefined;
  const args = isObject(conf.args) && isObject(conf.args.cni) ? conf.args.cni.ips : undefined;
  const list = runtime ?? args ?? (cniArgs.has('IP') ? cniArgs.get('IP')!.split(',') : []);
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) throw bad('runtimeConfig.ips', list, 'must be a list of addresses');
  const perFamily = { 4: 0, 6: 0 };
  for (const ip of list as string[]) {
    const address = ip.split('/')[0]!;
    let family: 4 | 6;
    try {
      family = parseIp(address).family;
    } catch {
      throw bad('runtimeConfig.ips', ip, 'is not an IPv4 or IPv6 address (twill assigns addresses from the host lease)');
    }
    perFamily[family]++;
  }
  for (const family of [4, 6] as const) {
    if (perFamily[family] > 1) {
      throw new CniError(CniCode.UNSUPPORTED_FIELD, `runtimeConfig.ips: twill assigns one IPv${family} address per interface, got ${perFamily[family]}`);
    }
  }
  return list as string[];
}

function requestedMac(conf: Json, cniArgs: ReadonlyMap<string, string>): string | undefined {
  const runtime = isObject(conf.runtimeConfig) ? conf.runtimeConfig.mac : undefined;
  const args = isObject(conf.args) && isObject(conf.args.cni) ? conf.args.cni.mac : undefined;
  const mac = runtime ?? args ?? cniArgs.get('MAC');
  if (mac === undefined) return undefined;
  if (typeof mac !== 'string') throw bad('runtimeConfig.mac', mac, 'must be a string');
  try {
    parseMac(mac);
  } catch {
    throw bad('runtimeConfig.mac', mac, 'is not a MAC address');
  }
  return mac.toLowerCase();
}

function validAttachments(conf: Json): TwillNetConf['validAttachments'] {
  const list = conf['cni.dev/valid-attachments'] ?? conf['cni.dev/attachments'];
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) throw bad('cni.dev/valid-attachments', list, 'must be a list');
  return list.map((a: unknown) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
      throw bad('cni.dev/valid-attachments', a, 'entries need "containerID" and "ifname"');
    }
    return { containerId: a.containerID, ifname: a.ifname };
  });
}

/**
 * Validates the network config (SPEC.md "Network configuration"): code 1 for a cniVersion
 * twill does not speak, 7 for a bad value, 2 for a key twill recognises but cannot honour.
 * Keys twill does not know pass through untouched (chaining, CONVENTIONS.md).
 */
export function readConfig(conf: Json, cniArgs: ReadonlyMap<string, string> = new Map()): TwillNetConf {
  const cniVersion = requireSupportedVersion(conf.cniVersion);
  const name = conf.name;
  if (typeof name !== 'string' || !NETWORK_NAME.test(name)) {
    throw bad('name', name, 'must be 1-128 letters, digits, "_", "." or "-", starting with a letter or digit');
  }
  if (conf.ipam !== undefined) {
    throw new CniError(CniCode.UNSUPPORTED_FIELD, 'unsupported field "ipam": twill allocates pod addresses from the host\'s lease itself; remove the ipam section');
  }
  const mtu = optional<number>(conf, 'mtu', 'number');
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) throw bad('mtu', mtu, 'must be an integer 68..65535');
  const bridge = optional<string>(conf, 'bridge', 'string') ?? DEFAULT_BRIDGE;
  if (bridge === '' || Buffer.byteLength(bridge) > 15 || /[/:\s]/.test(bridge)) throw bad('bridge', bridge, 'is not a valid interface name');
  const subnetFile = optional<string>(conf, 'subnetFile', 'string') ?? DEFAULT_SUBNET_FILE;
  const dataDir = optional<string>(conf, 'dataDir', 'string') ?? DEFAULT_DATA_DIR;
  for (const [key, value] of [['subnetFile', subnetFile], ['dataDir', dataDir]] as const) {
    if (!value.startsWith('/')) throw bad(key, value, 'must be an absolute path');
  }
  return {
    cniVersion,
    name,
    subnetFile,
    bridge,
    mtu,
    hairpinMode: optional<boolean>(conf, 'hairpinMode', 'boolean') ?? false,
    isDefaultGateway: optional<boolean>(conf, 'isDefaultGateway', 'boolean') ?? true,
    ipMasq: optional<boolean>(conf, 'ipMasq', 'boolean'),
    forceAddress: optional<boolean>(conf, 'forceAddress', 'boolean') ?? false,
    dataDir,
    requestedIps: requestedIps(conf, cniArgs),
    mac: requestedMac(conf, cniArgs),
    prevResult: conf.prevResult === undefined ? undefined : readResult(conf.prevResult, cniVersion),
    validAttachments: validAttachments(conf),
  };
}
