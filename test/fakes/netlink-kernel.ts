/**
 * One network namespace's kernel state, in memory: links with their addresses (netlink-links.ts),
 * neighbours and FDB entries (netlink-neighbours.ts), routes and nexthop objects
 * (netlink-routes.ts), and sysctls, wired so that what a link does reaches the routes (down or
 * deleted: its routes and nexthops are flushed; up or given an address: its connected routes
 * appear). Synchronous; FakeNetlink (netlink.ts) is
 * the async handle over it. A test changes it directly as an operator with `ip` would (those
 * changes are not in any handle's write log):
 *
 *   const nl = new FakeNetlink();
 *   const eth0 = nl.kernel.addUplink('eth0', '198.18.0.1/24');
 *   nl.kernel.routes.add({ dst: '10.244.7.0/24', gateway: '198.18.0.7', oif: eth0.index, protocol: 4 });
 *   nl.kernel.links.setLink('eth0', { up: false }, 'link.set');
 */
import type { Link } from '../../src/netlink/index.js';
import { kernelError } from './netlink-errors.js';
import { FakeLinks } from './netlink-links.js';
import { FakeRoutes } from './netlink-routes.js';

export class FakeKernel {
  readonly links: FakeLinks;
  readonly routes: FakeRoutes;
  /** By slash path ("net/ipv4/ip_forward"); `sysctl()` reads the dotted form too. */
  readonly sysctls = new Map<string, string>([['net/ipv4/ip_forward', '0']]);

  constructor(opts: { nexthops?: boolean } = {}) {
    // The route table asks the links about devices, and the links tell the route table what
    // happened to them; both through the two small interfaces, so neither file imports the other.
    let links: FakeLinks | undefined;
    const routes = new FakeRoutes({
      exists: (index) => links!.getLink(index) !== undefined,
      isUp: (index) => links!.isUp(index),
      hasCarrier: (index) => links!.hasCarrier(index),
      isLocalAddress: (ip) => links!.isLocalAddress(ip),
    });
    links = new FakeLinks({
      flushDevice: (index) => routes.flushDevice(index),
      addConnected: (index, cidr) => routes.addConnected(index, cidr),
      removeConnected: (index, cidr) => routes.removeConnected(index, cidr),
    });
    routes.nexthopSupport = opts.nexthops ?? true;
    this.links = links;
    this.routes = routes;
  }

  /** A NIC that is up, with an address (so a connected route): the host's external interface. */
  addUplink(name: string, cidr: string, opts: { mtu?: number; mac?: string } = {}): Link {
    const link = this.links.addDevice({ name, ...opts });
    this.links.addAddress(link.index, cidr, 'address.add', false);
    return link;
  }

  readSysctl(key: string): string {
    const value = this.sysctls.get(sysctlKey(key));
    if (value === undefined) throw kernelError('sysctl.read', 'ENOENT', key);
    return value;
  }

  writeSysctl(key: string, value: string | number): void {
    this.sysctls.set(sysctlKey(key), String(value));
  }
}

/** The real handle's two spellings of a key: "net.ipv4.ip_forward" or "net/ipv4/conf/twill.1/forwarding". */
function sysctlKey(key: string): string {
  return key.includes('/') ? key : key.replaceAll('.', '/');
}
