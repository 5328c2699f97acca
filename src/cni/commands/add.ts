import { existsSync } from 'node:fs';
import { PodIpamError } from '../../ipam/pod-ipam-errors.js';
import type { Netlink } from '../../netlink/index.js';
import type { CniRequest, PluginContext } from '../context.js';
import { CniCode, CniError } from '../spec/errors.js';
import type { CniInterface, CniIpConfig, CniResult, CniRoute } from '../spec/result.js';
import { readSubnetState } from '../subnet-state.js';
import { ensureHostBridge } from '../wiring/bridge.js';
import { configurePod, createPodVeth, deleteQuietly } from '../wiring/veth.js';

/** Maps the allocator's typed failures to CNI codes. */
export function ipamToCni(err: unknown): unknown {
  if (!(err instanceof PodIpamError)) return err;
  const code = { EXHAUSTED: CniCode.ADDRESSES_EXHAUSTED, DUPLICATE: CniCode.DUPLICATE_ATTACHMENT, UNAVAILABLE: CniCode.ADDRESS_UNAVAILABLE, IO: CniCode.IO_FAILURE }[err.code];
  return new CniError(code, err.message, undefined, { cause: err });
}

/**
 * ADD (SPEC.md "ADD"; the reference bridge plugin's order, cni.md §2): bridge with the gateway,
 * an address from the host's lease, the veth pair, the pod's address and routes, masquerading if
 * asked. Every step taken is undone when a later one fails, so a failed ADD leaks nothing (the
 * runtime's DEL that follows finds nothing left).
 */
export async function add(ctx: PluginContext, req: CniRequest): Promise<CniResult> {
  const { env, conf } = req;
  if (!existsSync(env.netns)) throw new CniError(CniCode.INVALID_ENV, `CNI_NETNS ${JSON.stringify(env.netns)} does not exist`);
  const state = readSubnetState(conf.subnetFile);
  const mtu = conf.mtu ?? state.mtu;
  const ipMasq = conf.ipMasq ?? !state.agentMasquerades;
  const host = ctx.hostNetlink;

  const bridge = await ensureHostBridge(host, { name: conf.bridge, mtu, gatewayCidr: state.gatewayCidr, forceAddress: conf.forceAddress });
  enableForwarding(host);

  const ipam = ctx.ipam(conf, state.subnet);
  let allocation;
  try {
    allocation = ipam.allocate({ containerId: env.containerId, ifname: env.ifname, netns: env.netns, ...(conf.requestedIps[0] !== undefined && { requested: conf.requestedIps[0] }) });
  } catch (err) {
    throw ipamToCni(err);
  }
  const undo: (() => Promise<unknown>)[] = [() => Promise.resolve(ipam.release(env.containerId, env.ifname))];
  const pod = ctx.openNetlink(env.netns);
  try {
    const veth = await createPodVeth(host, pod, {
      ifname: env.ifname, netnsPath: env.netns, mtu, mac: conf.mac, bridgeIndex: bridge.index, hairpin: conf.hairpinMode,
    });
    undo.push(() => deleteQuietly(host, veth.host.name));
    const routes = [...(conf.isDefaultGateway ? ['0.0.0.0/0'] : []), state.network];
    await configurePod(pod, veth.container, { ifname: env.ifname, netnsPath: env.netns, cidr: allocation.cidr, gateway: allocation.gateway, routes });
    if (ipMasq) {
      undo.push(() => ctx.masquerade.remove([allocation.address]));
      await ctx.masquerade.add(allocation.address, state.subnet);
    }
    const ours: CniResult = {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: bridge.name, ...(bridge.mac && { mac: bridge.mac }) },
        { name: veth.host.name, ...(veth.host.mac && { mac: veth.host.mac }) },
        { name: veth.container.name, ...(veth.container.mac && { mac: veth.container.mac }), mtu, sandbox: env.netns },
      ],
      ips: [{ address: allocation.cidr, gateway: allocation.gateway, interface: 2 }],
      routes: [
        ...(conf.isDefaultGateway ? [{ dst: '0.0.0.0/0', gw: allocation.gateway }] : []),
        // No gw: "the gateway of the IP in the same family" (SPEC.md), as flannel's IPAM routes are.
        { dst: state.network },
      ],
    };
    return mergeWithPrevious(ours, conf.prevResult);
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw err;
  } finally {
    pod.close();
  }
}

function enableForwarding(host: Netlink): void {
  // The bridge plugin sets it for isGateway; pods cannot leave the host without it.
  if (host.readSysctl('net.ipv4.ip_forward') !== '1') host.writeSysctl('net.ipv4.ip_forward', 1);
}

/**
 * A plugin given a prevResult outputs it with its own changes (SPEC.md "Chained plugins"):
 * interfaces appended (our ips' interface indexes shifted past the earlier ones), ips and routes
 * appended, anything else of the earlier result kept.
 */
function mergeWithPrevious(ours: CniResult, prev: (CniResult & Record<string, unknown>) | undefined): CniResult {
  if (!prev) return ours;
  const offset = prev.interfaces?.length ?? 0;
  const interfaces: CniInterface[] = [...(prev.interfaces ?? []), ...(ours.interfaces ?? [])];
  const ips: CniIpConfig[] = [...(prev.ips ?? []), ...(ours.ips ?? []).map((ip) => ({ ...ip, ...(ip.interface !== undefined && { interface: ip.interface + offset }) }))];
  const routes: CniRoute[] = [...(prev.routes ?? []), ...(ours.routes ?? [])];
  return { ...prev, cniVersion: ours.cniVersion, interfaces, ips, routes };
}
