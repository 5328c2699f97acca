import type { CniInterface, CniIpConfig, CniResult, CniRoute } from '../spec/result.js';
import type { PodLinkPair } from '../wiring/pod-link.js';
import type { AddScope } from './add-scope.js';

/**
 * The result of an ADD, as the reference bridge plugin shapes it: the bridge, the host end and
 * the pod's interface; the pod's address on interface 2; the default route (isDefaultGateway)
 * and the cluster network's route. A repeated ADD builds it again from what it finds, so it
 * returns what the first one did.
 */
export function podResult({ req, state, mtu }: AddScope, links: PodLinkPair, cidr: string, gateway: string): CniResult {
  const { env, conf } = req;
  return {
    cniVersion: conf.cniVersion,
    interfaces: [
      { name: links.bridge.name, ...(links.bridge.mac && { mac: links.bridge.mac }) },
      { name: links.host.name, ...(links.host.mac && { mac: links.host.mac }) },
      { name: links.container.name, ...(links.container.mac && { mac: links.container.mac }), mtu, sandbox: env.netns },
    ],
    ips: [{ address: cidr, gateway, interface: 2 }],
    routes: [
      ...(conf.isDefaultGateway ? [{ dst: '0.0.0.0/0', gw: gateway }] : []),
      // No gw: "the gateway of the IP in the same family" (SPEC.md), as flannel's IPAM routes are.
      { dst: state.network },
    ],
  };
}

/**
 * A plugin given a prevResult outputs it with its own changes (SPEC.md "Chained plugins"):
 * interfaces appended (our ips' interface indexes shifted past the earlier ones), ips and routes
 * appended, anything else of the earlier result kept.
 */
export function mergeWithPrevious(ours: CniResult, prev: (CniResult & Record<string, unknown>) | undefined): CniResult {
  if (!prev) return ours;
  const offset = prev.interfaces?.length ?? 0;
  const interfaces: CniInterface[] = [...(prev.interfaces ?? []), ...(ours.interfaces ?? [])];
  const ips: CniIpConfig[] = [...(prev.ips ?? []), ...(ours.ips ?? []).map((ip) => ({ ...ip, ...(ip.interface !== undefined && { interface: ip.interface + offset }) }))];
  const routes: CniRoute[] = [...(prev.routes ?? []), ...(ours.routes ?? [])];
  return { ...prev, cniVersion: ours.cniVersion, interfaces, ips, routes };
}
