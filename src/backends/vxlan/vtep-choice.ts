import { rmSync } from 'node:fs';
import { InvalidArgumentError } from '../../core/errors.js';
import type { NetlinkHandle } from '../../netlink/index.js';
import type { BackendContext, ExternalInterface } from '../backend.js';
import { TYPE, type VxlanOptions } from './config.js';
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
 * The underlay of one address family: the tunnel's source address (the external interface's
 * address of that family) and the address published in the lease (PublicIP or PublicIPv6), or a
 * clear error when the interface has none.
 */
export function underlayOf(ext: ExternalInterface, family: 4 | 6): { readonly address: string; readonly publicIp: string } {
  const [address, publicIp] = family === 4 ? [ext.address, ext.publicIp] : [ext.ipv6Address, ext.publicIpv6];
  if (address === undefined || publicIp === undefined) {
    throw new InvalidArgumentError(`${TYPE} backend external interface`, ext.name,
      `has no ${family === 4 ? 'IPv4' : 'global IPv6'} address, and the network config enables ${family === 4 ? 'IPv4' : 'IPv6'}: the ${family === 4 ? 'IPv4' : 'IPv6'} VXLAN device needs one as its tunnel source`);
  }
  return { address, publicIp };
}

/**
 * Chooses the MAC of `family`'s device (twill.<VNI>, or twill-v6.<VNI> for 6) before the lease is
 * acquired (it goes into the lease's BackendData or BackendV6Data), in this order:
 *   1. flanneld's device (flannel.<VNI>, flannel-v6.<VNI>) is here to be taken over, with a MAC
 *      this host may keep: that MAC, so no peer has to change anything (flanneld 0.20 peers can
 *      miss a lease update for good, flannel.md "Observed"). The choice is recorded in the state
 *      directory first.
 *   2. such a record from an earlier takeover (vtep-state.ts): the same MAC after a restart.
 *   3. the MAC derived from the family's public address (PublicIP or PublicIPv6) and VNI (mac.ts).
 * Throws EFLANNELD_RUNNING while flanneld runs beside us (takeover.ts).
 */
export async function chooseVtep(ctx: BackendContext, options: VxlanOptions, findFlanneld?: (nl: NetlinkHandle) => number[], family: 4 | 6 = 4): Promise<VtepChoice> {
  const { vni, port } = options;
  const underlay = underlayOf(ctx.extIface, family);
  const flannel = await detectFlannel(ctx.netlink, { vni, port, localIp: underlay.address, family }, findFlanneld);
  if (flannel?.adoptMac !== undefined) {
    writeAdoptedVtep(ctx.stateDir, { vni, mac: flannel.adoptMac, adoptedFrom: flannel.device.name, at: new Date().toISOString() }, family);
    return { mac: flannel.adoptMac, source: `adopted from ${flannel.device.name}`, flannel };
  }
  const derived = { mac: deriveVtepMac(underlay.publicIp, vni), source: `derived from ${family === 4 ? 'PublicIP' : 'PublicIPv6'} and VNI`, flannel };
  if (flannel) {
    // A flannel device whose MAC cannot be kept: an older record would bring back a MAC that
    // no lease carries any more on the next restart.
    rmSync(adoptedVtepPath(ctx.stateDir, vni, family), { force: true });
    return derived;
  }
  const saved = readAdoptedVtep(ctx.stateDir, vni, family);
  if (saved === undefined) return derived;
  if (!saved.ok) {
    ctx.log.warn({ reason: saved.reason }, 'ignoring the record of an adopted VTEP MAC; publishing the derived MAC (peers follow the lease)');
    return derived;
  }
  return { mac: saved.vtep.mac, source: `adopted from ${saved.vtep.adoptedFrom} at ${saved.vtep.at}`, flannel };
}
