import { PodIpam } from '../ipam/pod-ipam.js';
import { Netlink } from '../netlink/index.js';
import { PodMasquerade } from '../nftables/index.js';
import type { TwillNetConf } from './config.js';
import type { PluginContext } from './context.js';
import { currentNetnsIdentity } from './pod-netns.js';

/** A PluginContext with real netlink, nft and on-disk IPAM; `close()` releases the host socket. */
export function createPluginContext(): PluginContext & { close(): void } {
  const hostNetlink = Netlink.open();
  return {
    hostNetlink,
    hostNetns: currentNetnsIdentity(),
    openNetlink: (netnsPath) => Netlink.open(netnsPath),
    masquerade: new PodMasquerade(),
    ipam: (conf: TwillNetConf, subnets, onStray) => new PodIpam({
      dataDir: conf.dataDir, network: conf.name,
      ...(subnets?.ipv4 !== undefined && { subnet: subnets.ipv4 }),
      ...(subnets?.ipv6 !== undefined && { ipv6Subnet: subnets.ipv6 }),
      ...(onStray && { onStray }),
    }),
    close: () => hostNetlink.close(),
  };
}
