import { InvalidArgumentError } from '../../core/errors.js';
import type { Backend } from '../backend.js';
import { parseBgpOptions, TYPE, type BgpOptions } from './config.js';
import type { DriverFactory } from './network.js';

/**
 * The bgp backend: pod subnets routed over BGP with no encapsulation (Calico's model). Each
 * host announces its leased subnet and installs what its peers (the other hosts, route
 * reflectors, its top-of-rack router) announce. The speaker is Twill's own, or a gobgpd beside
 * the agent driven over its gRPC API (Speaker "gobgp", --gobgp-api).
 */
export const startDriver: DriverFactory = async (options, driverOptions, host) => {
  // The speaker and the network's code are loaded only on a host that runs this backend: an
  // agent of another backend starts faster without them (issue 18, cold start).
  if ((host?.speaker ?? options.speaker) === 'builtin') {
    const { startBuiltinDriver } = await import('./builtin-driver.js');
    return startBuiltinDriver(driverOptions);
  }
  const api = host?.gobgpApi;
  if (api === undefined) throw new InvalidArgumentError('--gobgp-api', '', 'is required with Speaker "gobgp": the address of the gobgpd gRPC API beside the agent, e.g. 127.0.0.1:50051');
  // Loaded only in this mode: the gRPC client is the agent's biggest dependency.
  const { startGobgpDriver } = await import('./gobgp/driver.js');
  return startGobgpDriver({ ...driverOptions, api });
};

export function bgpBackend(factory: DriverFactory = startDriver): Backend<BgpOptions> {
  return {
    type: TYPE,
    // IPv6 subnets over MP-BGP (families.ts): on the IPv4 sessions of a dual-stack cluster, on
    // IPv6 sessions in an IPv6-only one.
    supportsIpv6: true,
    parseOptions: parseBgpOptions,
    async register(ctx, options) {
      const { BgpNetwork } = await import('./network.js');
      return new BgpNetwork(ctx, options, factory);
    },
  };
}
