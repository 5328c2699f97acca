import { InvalidArgumentError } from '../../core/errors.js';
import type { Backend } from '../backend.js';
import { rejectUnknownOptions } from '../options.js';
import { HostGwNetwork } from './network.js';
import { HOST_GW_TYPE } from './plan.js';

/**
 * flannel's "host-gw" backend: plain routes to each remote pod subnet via that host's address,
 * for hosts on one L2 segment. It takes no options.
 */
export const hostGwBackend: Backend<Readonly<Record<string, never>>> = {
  type: HOST_GW_TYPE,
  supportsIpv6: true,
  parseOptions(raw) {
    rejectUnknownOptions(HOST_GW_TYPE, raw, []);
    return Object.freeze({});
  },
  register(ctx) {
    const { extIface } = ctx;
    // Other hosts route to our pods via the PublicIP we publish; behind NAT that address is not
    // ours on the segment, so the routes would point at the NAT box (flannel refuses too).
    if (extIface.publicIp !== extIface.address) {
      return Promise.reject(new InvalidArgumentError('--public-ip', extIface.publicIp,
        `differs from ${extIface.name}'s address ${extIface.address}: the host-gw backend routes pod subnets via each host's own address, so it cannot work through NAT (use vxlan, or drop --public-ip)`));
    }
    if (ctx.clusterNetworkV6 !== undefined && extIface.publicIpv6 !== extIface.ipv6Address) {
      return Promise.reject(new InvalidArgumentError('--public-ipv6', extIface.publicIpv6,
        `differs from ${extIface.name}'s IPv6 address ${extIface.ipv6Address ?? '(none)'}: the host-gw backend routes IPv6 pod subnets via each host's own IPv6 address, so it cannot work through NAT`));
    }
    return Promise.resolve(new HostGwNetwork(ctx));
  },
};
