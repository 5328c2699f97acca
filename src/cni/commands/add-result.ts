import type { TwillNetConf } from '../config.js';
import type { CniInterface, CniIpConfig, CniResult, CniRoute } from '../spec/result.js';
import type { FamilySubnet } from '../subnet-state.js';
import type { PodLinkPair } from '../wiring/pod-link.js';
import type { AddScope } from './add-scope.js';

/** One address of the pod: "10.244.3.5/24" via "10.244.3.1", or "fc00:0:0:3::2/64" via "fc00:0:0:3::1". */
export interface PodIp {
  readonly cidr: string;
  readonly gateway: string;
}

/** The destinations a family's gateway gets in the pod: the default route (isDefaultGateway) and the cluster network. */
export function podRouteDestinations(conf: TwillNetConf, family: FamilySubnet): string[] {
  return [...(conf.isDefaultGateway ? [family.family === 4 ? '0.0.0.0/0' : '::/0'] : []), family.network];
}

/**
 * The result of an ADD, as the reference bridge plugin shapes it: the bridge, the host end and
 * the pod's interface; the pod's addresses on interface 2 (IPv4 first); per family the default
 * route (isDefaultGateway) and the cluster network's route. A repeated ADD builds it again from
 * what it finds, so it returns what the first one did.
 */
export function podResult({ req, state, mtu }: AddScope, links: PodLinkPair, ips: readonly PodIp[]): CniResult {
  const { env, conf } = req;
  return {
    cniVersion: conf.cniVersion,
    interfaces: [
      { name: links.bridge.name, ...(links.bridge.mac && { mac: links.bridge.mac }) },
      { name: links.host.name, ...(links.host.mac && { mac: links.host.mac }) },
      { name: links.container.name, ...(links.container.mac && { mac: links.container.mac }), mtu, sandbox: env.netns },
    ],
    ips: ips.map((ip) => ({ address: ip.cidr, gateway: ip.gateway, interface: 2 })),
    routes: state.families.flatMap((family) => {
      const gateway = ips.find((ip) => ip.cidr.includes(':') === (family.family === 6))?.gateway ?? family.gateway;
      return [
        ...(conf.isDefaultGateway ? [{ dst: family.family === 4 ? '0.0.0.0/0' : '::/0', gw: gateway }] : []),
        // No gw: "the gateway of the IP in the same family" (SPEC.md), as flannel's IPAM routes are.
        { dst: family.network },
      ];
    }),
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
