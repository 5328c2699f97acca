import { networkPrefix } from '../../core/ip.js';
import type { AttachmentRecord } from '../../ipam/pod-ipam.js';
import { podMasqueradeOwner } from '../../nftables/index.js';
import { CniCode, CniError } from '../spec/errors.js';
import type { CniResult } from '../spec/result.js';
import { hostEndOf, type PodLinkPair } from '../wiring/pod-link.js';
import { podResult } from './add-result.js';
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
  const cidr = record?.ips.length === 1 ? record.ips[0]! : undefined;
  const links = cidr === undefined ? undefined : await completeWiring(scope, cidr);
  checkpoint(req);
  if (cidr !== undefined && links !== undefined) {
    if (ipMasq) await ctx.masquerade.add(cidr.split('/')[0]!, state.subnet, state.network, podMasqueradeOwner(conf.dataDir, conf.name));
    return podResult(scope, links, cidr, ipam.gateway!);
  }
  req.warn(`rolling back the half-done ADD of container ${env.containerId} interface ${env.ifname} before doing it again`);
  await del(ctx, req);
  return undefined;
}

/**
 * The pod's veth, its host end on the bridge, its address `cidr` (inside the current lease), the
 * link up and every route the config asks for via the gateway; undefined when anything is missing.
 */
async function completeWiring({ ctx, req, state, pod, ipam }: AddScope, cidr: string): Promise<PodLinkPair | undefined> {
  const { env, conf } = req;
  const gateway = ipam.gateway;
  if (gateway === undefined || networkPrefix(cidr) !== state.subnet) return undefined;
  const container = await pod.getLink(env.ifname);
  if (!container?.up) return undefined;
  const links = await hostEndOf(ctx.hostNetlink, container, conf.bridge);
  if (typeof links === 'string') return undefined;
  const addresses = await pod.listAddresses(container.index);
  if (!addresses.some((a) => a.cidr === cidr)) return undefined;
  const routes = await pod.listRoutes({ family: 4 });
  const wanted = [...(conf.isDefaultGateway ? ['0.0.0.0/0'] : []), state.network];
  // Through this interface, or (a second interface on the network) one the pod had already.
  const present = wanted.every((dst) => routes.some((r) => r.dst === dst && r.gateway === gateway));
  return present ? links : undefined;
}
