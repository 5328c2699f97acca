import { formatCidr, parseCidr, parseIp } from '../core/ip.js';
import { TwillError } from '../core/errors.js';
import { isNetlinkError } from './errors.js';
import type { LinkRef, NetlinkHandle } from './handle.js';
import type { BridgeSpec, IpipSpec, Link, VxlanSpec } from './types.js';

/**
 * Idempotent "make it so" helpers. Each one leaves the kernel with the object as specified:
 * absent -> created; present and compatible -> kept (mutable details such as MTU, MAC and up-state
 * adjusted); present but incompatible (another kind, another VNI...) -> IncompatibleLinkError,
 * unless the caller passes `{ recreate: true }`. A device someone else created is never replaced
 * behind the caller's back.
 */
export class IncompatibleLinkError extends TwillError {
  readonly link: string;
  readonly differences: readonly string[];

  constructor(link: string, differences: string[]) {
    super('EINCOMPATIBLE', `link ${link} exists but differs from what is wanted: ${differences.join('; ')}`);
    this.link = link;
    this.differences = differences;
  }
}

export interface EnsureOptions {
  /** Delete and recreate an incompatible link instead of failing. */
  readonly recreate?: boolean;
}

export interface EnsureResult {
  readonly link: Link;
  /** What had to change: "created", "recreated", "mtu 1500->1450", "up"; empty when nothing did. */
  readonly changes: readonly string[];
}

type Compare = (link: Link) => string[];

async function ensureLink(
  nl: NetlinkHandle, name: string, compare: Compare, create: () => Promise<void>,
  mutable: { mtu?: number | undefined; up?: boolean | undefined; mac?: string | undefined }, opts: EnsureOptions,
): Promise<EnsureResult> {
  const changes: string[] = [];
  let link = await nl.getLink(name);
  if (link) {
    const diffs = compare(link);
    if (diffs.length > 0) {
      if (!opts.recreate) throw new IncompatibleLinkError(name, diffs);
      await nl.deleteLink(link.index);
      link = undefined;
      changes.push('recreated');
    }
  }
  if (!link) {
    try {
      await create();
      if (changes.length === 0) changes.push('created');
    } catch (err) {
      // Lost a race with a concurrent creator: judge what it made like any existing link.
      if (!isNetlinkError(err, 'EEXIST')) throw err;
      const diffs = compare(await nl.requireLink(name));
      if (diffs.length > 0) throw new IncompatibleLinkError(name, diffs);
    }
    link = await nl.requireLink(name);
  }
  // The MAC is set in place: someone changing it (udev, an operator) is no reason to recreate the
  // device and cut its traffic, and a recreation would race with whoever changes it again.
  const mac = mutable.mac?.toLowerCase();
  if (mac !== undefined && link.mac !== mac) {
    await nl.setMac(link.index, mac);
    changes.push(`mac ${link.mac ?? 'none'}->${mac}`);
  }
  if (mutable.mtu !== undefined && link.mtu !== mutable.mtu) {
    await nl.setMtu(link.index, mutable.mtu);
    changes.push(`mtu ${link.mtu}->${mutable.mtu}`);
  }
  if (mutable.up !== undefined && link.up !== mutable.up) {
    await nl.setUp(link.index, mutable.up);
    changes.push(mutable.up ? 'up' : 'down');
  }
  if (changes.length > 0) link = await nl.requireLink(name);
  return { link, changes };
}

function kindDiff(link: Link, kind: string): string[] {
  return link.kind === kind ? [] : [`kind is ${link.kind ?? 'none'}, want ${kind}`];
}

export function ensureBridge(nl: NetlinkHandle, spec: BridgeSpec & { up?: boolean }, opts: EnsureOptions = {}): Promise<EnsureResult> {
  return ensureLink(nl, spec.name, (l) => kindDiff(l, 'bridge'), () => nl.createBridge(spec), { mtu: spec.mtu, up: spec.up ?? true }, opts);
}

export function ensureVxlan(nl: NetlinkHandle, spec: VxlanSpec & { up?: boolean }, opts: EnsureOptions = {}): Promise<EnsureResult> {
  const compare: Compare = (l) => {
    const d = kindDiff(l, 'vxlan');
    if (d.length > 0 || !l.vxlan) return d;
    const v = l.vxlan;
    if (v.vni !== spec.vni) d.push(`VNI is ${v.vni}, want ${spec.vni}`);
    if (v.port !== spec.port) d.push(`port is ${v.port}, want ${spec.port}`);
    if (spec.localIp !== undefined && v.localIp !== parseIp(spec.localIp).text) {
      d.push(`local IP is ${v.localIp ?? 'unset'}, want ${spec.localIp}`);
    }
    if (spec.underlayIndex !== undefined && v.underlayIndex !== spec.underlayIndex) {
      d.push(`underlay device is index ${v.underlayIndex ?? 'unset'}, want ${spec.underlayIndex}`);
    }
    if (v.learning !== (spec.learning ?? false)) d.push(`learning is ${v.learning ? 'on' : 'off'}, want ${spec.learning ? 'on' : 'off'}`);
    if (v.gbp !== (spec.gbp ?? false)) d.push(`GBP is ${v.gbp ? 'on' : 'off'}, want ${spec.gbp ? 'on' : 'off'}`);
    return d;
  };
  return ensureLink(nl, spec.name, compare, () => nl.createVxlan(spec), { mtu: spec.mtu, up: spec.up ?? true, mac: spec.mac }, opts);
}

export function ensureIpip(nl: NetlinkHandle, spec: IpipSpec & { up?: boolean }, opts: EnsureOptions = {}): Promise<EnsureResult> {
  const compare: Compare = (l) => {
    const d = kindDiff(l, 'ipip');
    if (d.length > 0 || !l.ipip) return d;
    if (spec.localIp !== undefined && l.ipip.localIp !== parseIp(spec.localIp).text) d.push(`local IP is ${l.ipip.localIp ?? 'unset'}, want ${spec.localIp}`);
    if (spec.underlayIndex !== undefined && l.ipip.underlayIndex !== spec.underlayIndex) {
      d.push(`underlay device is index ${l.ipip.underlayIndex ?? 'unset'}, want ${spec.underlayIndex}`);
    }
    return d;
  };
  return ensureLink(nl, spec.name, compare, () => nl.createIpip(spec), { mtu: spec.mtu, up: spec.up ?? true }, opts);
}

/** Makes sure `cidr` is on the link; other addresses stay. Returns true when it had to add it. */
export async function ensureAddress(nl: NetlinkHandle, ref: LinkRef, cidr: string): Promise<boolean> {
  const want = formatCidr(parseCidr(cidr, 'interface address'));
  const present = await nl.listAddresses(ref);
  if (present.some((a) => a.cidr === want)) return false;
  try {
    await nl.addAddress(ref, want);
  } catch (err) {
    if (!isNetlinkError(err, 'EEXIST')) throw err;
    return false;
  }
  return true;
}
