import { atLeast } from './versions.js';

/**
 * A CNI result (SPEC.md "Success"), held in the 1.1.0 shape and written in whatever version
 * the config asks for (the spec: "the plugin must output the result in the same version").
 */
export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  /** 1.1.0 only. */
  readonly mtu?: number;
  /** The netns path, for interfaces inside the container. */
  readonly sandbox?: string;
}

export interface CniIpConfig {
  /** "10.244.3.5/24" */
  readonly address: string;
  readonly gateway?: string;
  /** Index into `interfaces`. */
  readonly interface?: number;
}

export interface CniRoute {
  readonly dst: string;
  /** Absent: the gateway of the IP in the same family (SPEC.md). */
  readonly gw?: string;
}

export interface CniDns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces?: readonly CniInterface[];
  readonly ips?: readonly CniIpConfig[];
  readonly routes?: readonly CniRoute[];
  readonly dns?: CniDns;
}

/**
 * Writes `result` in `version`. 1.0.0 drops the fields 1.1.0 added (interface mtu); 0.3.x and
 * 0.4.0 add `ips[].version` ("4"/"6", removed in 1.0.0) and keep only name/mac/sandbox of an
 * interface (pkg/types/040 in containernetworking/cni).
 */
export function convertResult(result: CniResult, version: string): Record<string, unknown> {
  const modern = atLeast(version, '1.0.0');
  const interfaces = result.interfaces?.map((i) => ({
    name: i.name,
    ...(i.mac !== undefined && { mac: i.mac }),
    ...(i.mtu !== undefined && atLeast(version, '1.1.0') && { mtu: i.mtu }),
    ...(i.sandbox !== undefined && { sandbox: i.sandbox }),
  }));
  const ips = result.ips?.map((ip) => ({
    ...(!modern && { version: ip.address.includes(':') ? '6' : '4' }),
    address: ip.address,
    ...(ip.gateway !== undefined && { gateway: ip.gateway }),
    ...(ip.interface !== undefined && { interface: ip.interface }),
  }));
  const routes = result.routes?.map((r) => ({ dst: r.dst, ...(r.gw !== undefined && { gw: r.gw }) }));
  return {
    cniVersion: version,
    ...(interfaces && { interfaces }),
    ...(ips && { ips }),
    ...(routes && { routes }),
    ...(result.dns && { dns: result.dns }),
  };
}

/**
 * Reads a result another plugin (or the runtime's cache) handed over as `prevResult`, of any
 * version, into the 1.1.0 shape; unknown fields are kept so a chained result passes through.
 */
export function readResult(value: unknown, version: string): CniResult & Record<string, unknown> {
  const obj = (value !== null && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  const ips = Array.isArray(obj.ips)
    ? (obj.ips as Record<string, unknown>[]).map(({ version: _v, ...rest }) => rest as unknown as CniIpConfig)
    : undefined;
  return { ...obj, cniVersion: version, ...(ips && { ips }) };
}
