import { rmSync } from 'node:fs';
import type { NetlinkHandle } from '../../netlink/index.js';
import type { BackendContext } from '../backend.js';
import type { VxlanOptions } from './config.js';
import { deriveVtepMac } from './mac.js';
import { detectFlannel, type FoundFlannel } from './takeover.js';
import { adoptedVtepPath, readAdoptedVtep, writeAdoptedVtep } from './vtep-state.js';

/** The VTEP MAC this node publishes, where it comes from, and flanneld's device if one is to be taken over. */
export interface VtepChoice {
  readonly mac: string;
  /** For the log: "derived from PublicIP and VNI", "adopted from flannel.1", ... */
  readonly source: string;
  readonly flannel: FoundFlannel | undefined;
}

/**
 * Chooses the MAC before the lease is acquired (it goes into the lease), in this order:
 *   1. flanneld's device is here to be taken over, with a MAC this host may keep: that MAC, so
 *      no peer has to change anything (flanneld 0.20 peers can miss a lease update for good,
 *      flannel.md "Observed"). The choice is recorded in the state directory first.
 *   2. such a record from an earlier takeover (vtep-state.ts): the same MAC after a restart.
 *   3. the MAC derived from PublicIP and VNI (mac.ts).
 * Throws EFLANNELD_RUNNING while flanneld runs beside us (takeover.ts).
 */
export async function chooseVtep(ctx: BackendContext, options: VxlanOptions, findFlanneld?: (nl: NetlinkHandle) => number[]): Promise<VtepChoice> {
  const { vni, port } = options;
  const flannel = await detectFlannel(ctx.netlink, { vni, port, localIp: ctx.extIface.address }, findFlanneld);
  if (flannel?.adoptMac !== undefined) {
    writeAdoptedVtep(ctx.stateDir, { vni, mac: flannel.adoptMac, adoptedFrom: flannel.device.name, at: new Date().toISOString() });
    return { mac: flannel.adoptMac, source: `adopted from ${flannel.device.name}`, flannel };
  }
  const derived = { mac: deriveVtepMac(ctx.extIface.publicIp, vni), source: 'derived from PublicIP and VNI', flannel };
  if (flannel) {
    // A flannel device whose MAC cannot be kept: an older record would bring back a MAC that
    // no lease carries any more on the next restart.
    rmSync(adoptedVtepPath(ctx.stateDir, vni), { force: true });
    return derived;
  }
  const saved = readAdoptedVtep(ctx.stateDir, vni);
  if (saved === undefined) return derived;
  if (!saved.ok) {
    ctx.log.warn({ reason: saved.reason }, 'ignoring the record of an adopted VTEP MAC; publishing the derived MAC (peers follow the lease)');
    return derived;
  }
  return { mac: saved.vtep.mac, source: `adopted from ${saved.vtep.adoptedFrom} at ${saved.vtep.at}`, flannel };
}
