import { networkPrefix } from '../../core/ip.js';
import type { CniRequest, PluginContext } from '../context.js';
import { openPodNetlink, podNetnsProblem, requirePodNetns } from '../pod-netns.js';
import { CniCode, CniError } from '../spec/errors.js';
import { requireVersionFor } from '../spec/versions.js';
import { leaseSubnets, readSubnetState } from '../subnet-state.js';
import { hostEndOf } from '../wiring/pod-link.js';

function failed(what: string): CniError {
  return new CniError(CniCode.CHECK_FAILED, `CHECK failed: ${what}`);
}

/**
 * CHECK (SPEC.md "CHECK", cni.md §7 row 12): the prevResult still describes the pod. Checks the
 * container interface (name, MAC), each address on it, each route, the host end on the bridge,
 * IPAM's record and, when masquerading applies, the pod's masquerade element. Later plugins may
 * have added things; only what twill made is required.
 */
export async function check(ctx: PluginContext, req: CniRequest): Promise<void> {
  const { env, conf } = req;
  requireVersionFor('CHECK', conf.cniVersion, '0.4.0');
  const prev = conf.prevResult;
  if (!prev) throw new CniError(CniCode.INVALID_CONFIG, 'CHECK needs prevResult (the result of the ADD)');
  const state = readSubnetState(conf.subnetFile);
  const ipam = ctx.ipam(conf, leaseSubnets(state), (err) => req.warn(err.message));
  const record = ipam.get(env.containerId, env.ifname);
  if (!record) throw new CniError(CniCode.UNKNOWN_CONTAINER, `no attachment for container ${env.containerId} interface ${env.ifname}`);
  if (podNetnsProblem(env.netns, ctx.hostNetns)?.kind === 'missing') throw failed(`network namespace ${env.netns} is gone`);
  requirePodNetns(env.netns, ctx.hostNetns);

  const interfaces = prev.interfaces ?? [];
  const ourIndex = interfaces.findIndex((i) => i.name === env.ifname && i.sandbox === env.netns);
  if (ourIndex < 0) throw failed(`prevResult lists no interface ${env.ifname} in ${env.netns}`);
  const ips = (prev.ips ?? []).filter((ip) => ip.interface === ourIndex);

  const pod = openPodNetlink(ctx.openNetlink, env.netns);
  try {
    const link = await pod.getLink(env.ifname);
    if (!link) throw failed(`interface ${env.ifname} is missing from ${env.netns}`);
    const wantMac = interfaces[ourIndex]!.mac;
    if (wantMac && link.mac !== wantMac.toLowerCase()) throw failed(`${env.ifname} has MAC ${link.mac}, the result says ${wantMac}`);
    const present = new Set((await pod.listAddresses(link.index)).map((a) => a.cidr));
    for (const ip of ips) {
      if (!present.has(ip.address)) throw failed(`address ${ip.address} is missing from ${env.ifname}`);
      if (!ipam.holds(env.containerId, env.ifname, ip.address.split('/')[0]!)) throw failed(`IPAM holds no record of ${ip.address} for this container`);
    }
    const routes = await pod.listRoutes({ family: 4 });
    // IPv6 routes are checked when this interface has an IPv6 address (a dual-stack or IPv6-only pod).
    const ips6 = ips.filter((ip) => ip.address.includes(':'));
    const routes6 = ips6.length > 0 ? await pod.listRoutes({ family: 6 }) : [];
    for (const r of prev.routes ?? []) {
      const v6 = r.dst.includes(':');
      if (v6 && ips6.length === 0) continue;
      const gw = r.gw ?? (v6 ? ips6[0]?.gateway : ips.find((ip) => !ip.address.includes(':'))?.gateway);
      const dst = networkPrefix(r.dst);
      if (!(v6 ? routes6 : routes).some((k) => k.dst === dst && (gw === undefined || k.gateway === gw))) throw failed(`route ${r.dst}${gw ? ` via ${gw}` : ''} is missing in the pod`);
    }
    // The host end: the container end's peer on the bridge.
    const pair = await hostEndOf(ctx.hostNetlink, link, conf.bridge);
    if (typeof pair === 'string') throw failed(`${env.ifname} ${pair}`);
  } finally {
    pod.close();
  }
  const ipMasq = conf.ipMasq ?? !state.agentMasquerades;
  if (ipMasq) {
    const masqueraded = new Set((await ctx.masquerade.list()).map((m) => m.address));
    for (const ip of ips) {
      const address = ip.address.split('/')[0]!;
      if (!masqueraded.has(address)) throw failed(`masquerading of ${address} is missing`);
    }
  }
}
