import { networkPrefix } from '../../core/ip.js';
import type { AttachmentRecord } from '../../ipam/pod-ipam.js';
import { podMasqueradeOwner } from '../../nftables/index.js';
import { CniCode, CniError } from '../spec/errors.js';
import type { CniResult } from '../spec/result.js';
import { hostEndOf, type PodLinkPair } from '../wiring/pod-link.js';
import { podResult, podRouteDestinations, type PodIp } from './add-result.js';
import { checkpoint, type AddScope } from './add-scope.js';
import { del } from './del.js';

/**
 * An ADD found (container, ifname) holding an attachment already. That happens when a runtime
 * repeats an ADD whose answer it never got: the agent stopped mid-call, a deadline passed. For
 * the same namespace, a complete attachment (address, veth on the bridge, routes as this config
 * asks) is the answer: the same result is returned, its masquerading made sure of. Anything less
 * is a half-done ADD: it is rolled back as a DEL would, and undefined tells the caller to start
 * again. An attachment in another namespace is a real duplicate (code 104).
 */
export async function resumeAttachment(scope: AddScope): Promise<CniResult | undefined> {
  const { ctx, req, ipam, state, ipMasq } = scope;
  const { env, conf } = req;
  let record: AttachmentRecord | undefined;
  try {
    record = ipam.get(env.containerId, env.ifname);
  } catch {
    record = undefined; // malformed: half-done at best
  }
  if (record?.netns !== undefined && record.netns !== env.netns) {
    throw new CniError(CniCode.DUPLICATE_ATTACHMENT,
      `container ${env.containerId} interface ${env.ifname} is attached in ${record.netns} already (${record.ips.join(', ') || 'no address yet'}); a repeated ADD needs a DEL first`);
  }
  const ips = record === undefined ? undefined : recordedIps(scope, record.ips);
  const links = ips === undefined ? undefined : await completeWiring(scope, ips);
  checkpoint(req);
  if (ips !== undefined && links !== undefined) {
    if (ipMasq) {
      // recordedIps() gave one address per family of the lease, in its order.
      const masqueraded = ips.map((ip, i) => ({ ip: ip.cidr.split('/')[0]!, subnet: state.families[i]!.subnet, clusterNetwork: state.families[i]!.network }));
      await ctx.masquerade.addPod(masqueraded, podMasqueradeOwner(conf.dataDir, conf.name));
    }
    return podResult(scope, links, ips);
  }
  req.warn(`rolling back the half-done ADD of container ${env.containerId} interface ${env.ifname} before doing it again`);
  await del(ctx, req);
  return undefined;
}

/**
 * The attachment's addresses with their gateways, IPv4 first: one inside each current lease, or
 * undefined (a half-done ADD, or one made under another lease).
 */
function recordedIps({ state, ipam }: AddScope, cidrs: readonly string[]): PodIp[] | undefined {
  if (cidrs.length !== state.families.length) return undefined;
  const ips: PodIp[] = [];
  for (const family of state.families) {
    const cidr = cidrs.find((c) => c.includes(':') === (family.family === 6));
    const gateway = family.family === 4 ? ipam.gateway : ipam.ipv6Gateway;
    if (cidr === undefined || gateway === undefined || networkPrefix(cidr) !== family.subnet) return undefined;
    ips.push({ cidr, gateway });
  }
  return ips;
}

/**
 * The pod's veth, its host end on the bridge, its addresses `ips` (inside the current leases), the
 * link up and every route the config asks for via the gateways; undefined when anything is missing.
 */
async function completeWiring({ ctx, req, state, pod }: AddScope, ips: readonly PodIp[]): Promise<PodLinkPair | undefined> {
  const { env, conf } = req;
  const container = await pod.getLink(env.ifname);
  if (!container?.up) return undefined;
  const links = await hostEndOf(ctx.hostNetlink, container, conf.bridge);
  if (typeof links === 'string') return undefined;
  const addresses = await pod.listAddresses(container.index);
  if (!ips.every((ip) => addresses.some((a) => a.cidr === ip.cidr))) return undefined;
  for (const [i, family] of state.families.entries()) {
    const gateway = ips[i]!.gateway;
    const routes = await pod.listRoutes({ family: family.family });
    const wanted = podRouteDestinations(conf, family);
    // Through this interface, or (a second interface on the network) one the pod had already.
    if (!wanted.every((dst) => routes.some((r) => r.dst === dst && r.gateway === gateway))) return undefined;
  }
  return links;
}
