import { allocationIps, PodIpamError, type Allocation } from '../../ipam/pod-ipam.js';
import type { Netlink } from '../../netlink/index.js';
import { podMasqueradeOwner } from '../../nftables/index.js';
import type { CniRequest, PluginContext } from '../context.js';
import { openPodNetlink, requirePodNetns } from '../pod-netns.js';
import { CniCode, CniError } from '../spec/errors.js';
import type { CniResult } from '../spec/result.js';
import { leaseSubnets, readSubnetState } from '../subnet-state.js';
import { ensureHostBridge } from '../wiring/bridge.js';
import { configurePod, createPodVeth, deleteQuietly, refuseSecondDefaultRoute } from '../wiring/veth.js';
import { resumeAttachment } from './add-repeat.js';
import { mergeWithPrevious, podResult, podRouteDestinations } from './add-result.js';
import { checkpoint, ipamToCni, type AddScope } from './add-scope.js';

/**
 * ADD (SPEC.md "ADD"; the reference bridge plugin's order, cni.md §2): CNI_NETNS checked first,
 * the bridge with the gateway, the pod's namespace opened (so a path that is no network namespace
 * fails before anything is allocated), an address from the host's lease, the veth pair, the pod's
 * address and routes, masquerading if asked. Every step taken is undone when a later one fails or
 * the deadline passes, so a failed ADD leaks nothing. A repeated ADD of the same (container,
 * ifname, netns) returns the attachment it finds complete, or rolls back a half-done one and
 * starts again (add-repeat.ts).
 */
export async function add(ctx: PluginContext, req: CniRequest): Promise<CniResult> {
  const { env, conf } = req;
  requirePodNetns(env.netns, ctx.hostNetns);
  const state = readSubnetState(conf.subnetFile);
  const host = ctx.hostNetlink;
  const mtu = conf.mtu ?? state.mtu;
  const bridge = await ensureHostBridge(host, {
    name: conf.bridge, mtu, gatewayCidr: state.ipv4?.gatewayCidr, forceAddress: conf.forceAddress,
    ...(state.ipv6 && { ipv6GatewayCidr: state.ipv6.gatewayCidr }),
  });
  // IPv6 forwarding is the host's business (its routers' and its sysctl settings'), not the plugin's.
  if (state.ipv4) enableForwarding(host);
  checkpoint(req);
  const pod = openPodNetlink(ctx.openNetlink, env.netns);
  try {
    const ipam = ctx.ipam(conf, leaseSubnets(state), (err) => req.warn(err.message));
    const scope: AddScope = { ctx, req, state, bridge, pod, ipam, mtu, ipMasq: conf.ipMasq ?? !state.agentMasquerades };
    let allocation = allocate(scope);
    if (allocation === undefined) {
      const resumed = await resumeAttachment(scope);
      if (resumed) return mergeWithPrevious(resumed, conf.prevResult);
      allocation = allocate(scope) ?? duplicate(scope);
    }
    return mergeWithPrevious(await wire(scope, allocation), conf.prevResult);
  } finally {
    pod.close();
  }
}

/** The address of this ADD; undefined when (container, ifname) already has an attachment. */
function allocate({ req, ipam }: AddScope): Allocation | undefined {
  const { env, conf } = req;
  checkpoint(req);
  try {
    const requested = conf.requestedIps.length === 1 ? conf.requestedIps[0]! : conf.requestedIps;
    return ipam.allocate({ containerId: env.containerId, ifname: env.ifname, netns: env.netns, ...(conf.requestedIps.length > 0 && { requested }) });
  } catch (err) {
    if (err instanceof PodIpamError && err.code === 'DUPLICATE') return undefined;
    throw ipamToCni(err);
  }
}

function duplicate({ req }: AddScope): never {
  throw new CniError(CniCode.DUPLICATE_ATTACHMENT, `container ${req.env.containerId} interface ${req.env.ifname} already has an attachment (a repeated ADD needs a DEL first)`);
}

/** The veth pair, the pod's address and routes, masquerading; undone step by step on failure. */
async function wire(scope: AddScope, allocation: Allocation): Promise<CniResult> {
  const { ctx, req, state, bridge, pod, ipam, mtu, ipMasq } = scope;
  const { env, conf } = req;
  const host = ctx.hostNetlink;
  // This attempt's own: a later attempt's allocation (a retry after a deadline) is left alone.
  const undo: (() => Promise<unknown>)[] = [() => Promise.resolve(ipam.release(env.containerId, env.ifname, allocation.attempt))];
  try {
    if (conf.isDefaultGateway) await refuseSecondDefaultRoute(pod, env.netns, state.families.map((f) => f.family));
    checkpoint(req);
    const veth = await createPodVeth(host, pod, {
      ifname: env.ifname, netnsPath: env.netns, mtu, mac: conf.mac, bridgeIndex: bridge.index, hairpin: conf.hairpinMode,
    });
    undo.push(() => deleteQuietly(host, veth.host.name));
    checkpoint(req);
    const [first, ...more] = allocationIps(allocation).map((ip) => ({
      cidr: ip.cidr, gateway: ip.gateway, routes: podRouteDestinations(conf, ip.family === 4 ? state.ipv4! : state.ipv6!),
    }));
    const kept = await configurePod(pod, veth.container, { ifname: env.ifname, netnsPath: env.netns, ...first!, ...(more.length > 0 && { more }) });
    for (const dst of kept) req.warn(`the pod has a route to ${dst} already (another interface's); it stays, and ${env.ifname} gets none`);
    checkpoint(req);
    // Every address of the pod, each in its family's table (`ip twill-cni`, `ip6 twill-cni`).
    const masqueraded = ipMasq ? allocationIps(allocation).flatMap((ip) => {
      const lease = ip.family === 4 ? state.ipv4 : state.ipv6;
      return lease ? [{ ip: ip.address, subnet: lease.subnet, clusterNetwork: lease.network }] : [];
    }) : [];
    if (masqueraded.length > 0) {
      const ips = masqueraded.map((a) => a.ip);
      // Only while the addresses are still this attempt's: once released, they may be another pod's.
      undo.push(async () => { if (ipam.get(env.containerId, env.ifname)?.attempt === allocation.attempt) await ctx.masquerade.remove(ips); });
      await ctx.masquerade.addPod(masqueraded, podMasqueradeOwner(conf.dataDir, conf.name));
    }
    checkpoint(req);
    return podResult(scope, { bridge, host: veth.host, container: veth.container }, allocationIps(allocation));
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw err;
  }
}

function enableForwarding(host: Netlink): void {
  // The bridge plugin sets it for isGateway; pods cannot leave the host without it.
  if (host.readSysctl('net.ipv4.ip_forward') !== '1') host.writeSysctl('net.ipv4.ip_forward', 1);
}
