import { existsSync } from 'node:fs';
import type { CniRequest, PluginContext } from '../context.js';
import { readSubnetState } from '../subnet-state.js';
import { deleteQuietly } from '../wiring/veth.js';

/**
 * DEL (SPEC.md "DEL"): best effort, and successful when there is nothing left to remove, when
 * repeated, without a prevResult and without a namespace (the pod's sandbox may be gone already,
 * containerd/cri#948). The address is released by (container, ifname) from IPAM's own records,
 * and its masquerade element with it, so neither leaks when the netns is gone (plugins#810).
 */
export async function del(ctx: PluginContext, req: CniRequest): Promise<void> {
  const { env, conf } = req;
  if (env.netns !== '' && existsSync(env.netns)) {
    const pod = ctx.openNetlink(env.netns);
    try {
      // Deleting the container end removes the pair, host end included.
      await deleteQuietly(pod, env.ifname);
    } finally {
      pod.close();
    }
  }
  let subnet: string | undefined;
  let agentMasquerades: boolean | undefined;
  try {
    const state = readSubnetState(conf.subnetFile);
    subnet = state.subnet;
    agentMasquerades = state.agentMasquerades;
  } catch {
    // No subnet file (agent gone, node draining): DEL must still release.
  }
  const released = ctx.ipam(conf, subnet).release(env.containerId, env.ifname);
  // Masquerading was on if the config said so, or by default when the agent does not masquerade;
  // when that cannot be known, remove anyway (a no-op if the pod never had it).
  const ipMasq = conf.ipMasq ?? (agentMasquerades === undefined ? true : !agentMasquerades);
  if (ipMasq && released.length > 0) await ctx.masquerade.remove(released.map((c) => c.split('/')[0]!));
}
