import type { AttachmentRecord } from '../../ipam/pod-ipam.js';
import { isNetlinkError, type Netlink } from '../../netlink/index.js';
import type { CniRequest, LeaseSubnets, PluginContext } from '../context.js';
import { podNetnsProblem } from '../pod-netns.js';
import { leaseSubnets, readSubnetState } from '../subnet-state.js';
import { hostEndOf } from '../wiring/pod-link.js';
import { deleteQuietly } from '../wiring/veth.js';

/**
 * DEL (SPEC.md "DEL"), also how a half-done ADD is rolled back before it is redone (add-repeat.ts):
 * IPAM first, then whatever can be done in the pod's namespace (cni.md §2, bridge DEL). The
 * address is released by (container, ifname) from IPAM's own records, and its masquerade element
 * with it, so neither leaks when the namespace is gone (plugins#810) or is no namespace at all.
 * Successful when there is nothing left to remove, when repeated, without a prevResult and
 * without a namespace (the pod's sandbox may be gone already, containerd/cri#948).
 */
export async function del(ctx: PluginContext, req: CniRequest): Promise<void> {
  const { env, conf } = req;
  let subnets: LeaseSubnets | undefined;
  let agentMasquerades: boolean | undefined;
  try {
    const state = readSubnetState(conf.subnetFile);
    subnets = leaseSubnets(state);
    agentMasquerades = state.agentMasquerades;
  } catch {
    // No subnet file (agent gone, node draining): DEL must still release.
  }
  const ipam = ctx.ipam(conf, subnets, (err) => req.warn(err.message));
  let record: AttachmentRecord | undefined;
  try {
    record = ipam.get(env.containerId, env.ifname);
  } catch {
    record = undefined; // malformed or stray: release() still finds the addresses
  }
  const released = ipam.release(env.containerId, env.ifname);
  // Masquerading was on if the config said so, or by default when the agent does not masquerade;
  // when that cannot be known, remove anyway (a no-op if the pod never had it).
  const ipMasq = conf.ipMasq ?? (agentMasquerades === undefined ? true : !agentMasquerades);
  // Each address's element is in its family's table (`ip twill-cni`, `ip6 twill-cni`).
  const masqueraded = released.map((c) => c.split('/')[0]!);
  if (ipMasq && masqueraded.length > 0) await ctx.masquerade.remove(masqueraded);
  // The attachment recorded this namespace: the interface there is the one twill made.
  if (env.netns !== '') await removePodInterface(ctx, req, record?.netns === env.netns);
}

function refuse(req: CniRequest, why: string): void {
  req.warn(`refused to delete CNI_IFNAME ${JSON.stringify(req.env.ifname)} in ${req.env.netns}: it ${why}, and twill deletes only the veth it made`);
}

/**
 * Deletes the pod's end of the veth pair (which takes the host end with it), but only a veth
 * twill made: one its attachment vouches for, or whose host end is a port of the bridge. Anything
 * else is refused: never deleted, with a warning. The plugin's own namespace is refused outright
 * (DEL of "eth0" there would take the host's uplink). A namespace that is gone, or no namespace,
 * is nothing to clean. The DEL still succeeds: what twill owns (the address, its masquerading) is
 * released already, and a DEL that fails is repeated by the runtime forever.
 */
async function removePodInterface(ctx: PluginContext, req: CniRequest, vouched: boolean): Promise<void> {
  const { env, conf } = req;
  const problem = podNetnsProblem(env.netns, ctx.hostNetns);
  if (problem?.kind === 'host') return refuse(req, 'is in the plugin\'s own (the host\'s) network namespace');
  if (problem) {
    if (problem.kind === 'foreign') req.warn(`CNI_NETNS ${JSON.stringify(env.netns)} ${problem.detail}; nothing to remove there`);
    return;
  }
  let pod: Netlink;
  try {
    pod = ctx.openNetlink(env.netns);
  } catch (err) {
    if (!isNetlinkError(err, 'EINVAL') && !isNetlinkError(err, 'ENOENT')) throw err;
    req.warn(`CNI_NETNS ${JSON.stringify(env.netns)} is not a network namespace; nothing to remove there`);
    return;
  }
  try {
    const link = await pod.getLink(env.ifname);
    if (!link) return;
    if (link.kind !== 'veth') return refuse(req, `is a ${link.kind ?? 'plain'} device, not a veth`);
    if (!vouched) {
      const pair = await hostEndOf(ctx.hostNetlink, link, conf.bridge);
      if (typeof pair === 'string') return refuse(req, pair);
    }
    await deleteQuietly(pod, env.ifname);
  } finally {
    pod.close();
  }
}
