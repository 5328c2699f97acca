import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatMac, parseMac } from '../../core/mac.js';
import { isUnicastMac } from './mac.js';

/**
 * A VTEP MAC that Twill adopted from flanneld's device (takeover.ts), kept in the backend's state
 * directory so that a restart of twilld publishes it again instead of the MAC derived from
 * PublicIP and VNI (mac.ts).
 *
 * Why a file, rather than "keep whatever MAC twill.<VNI> has": a device MAC may have been set by
 * anyone (udev's MACAddressPolicy, an operator), and the device is gone after a reboot anyway,
 * while this file records a decision Twill made. It lives beside the subnet file (by default in
 * /run/twill, a tmpfs): after a reboot both are gone, the lease is found again by PublicIP and
 * the derived MAC is published, which peers follow through the lease, as they follow flanneld's
 * new random MAC after every reboot (flannel.md §3, "MAC"). Put --subnet-file on persistent
 * storage to keep the adopted MAC across reboots too.
 */
export interface AdoptedVtep {
  readonly vni: number;
  /** Canonical lower-case MAC. */
  readonly mac: string;
  /** The device it was adopted from ("flannel.1"). */
  readonly adoptedFrom: string;
  /** ISO 8601 time of the takeover. */
  readonly at: string;
}

export type AdoptedVtepRead =
  | { readonly ok: true; readonly vtep: AdoptedVtep }
  | { readonly ok: false; readonly reason: string };

/** Where the record of `family`'s VTEP lives: vxlan-1-vtep.json (twill.1), vxlan-1-v6-vtep.json (twill-v6.1). */
export function adoptedVtepPath(stateDir: string, vni: number, family: 4 | 6 = 4): string {
  return join(stateDir, `vxlan-${vni}${family === 6 ? '-v6' : ''}-vtep.json`);
}

const RECORD_NAME = /^vxlan-\d+(?:-v6)?-vtep\.json$/;

/** Writes the record atomically (temp file + rename), so a crash never leaves half a file. */
export function writeAdoptedVtep(stateDir: string, vtep: AdoptedVtep, family: 4 | 6 = 4): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const path = adoptedVtepPath(stateDir, vtep.vni, family);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(vtep)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

/** Removes every such record in `stateDir` (`twillctl uninstall`); returns the files removed. */
export function removeAdoptedVteps(stateDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(stateDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!RECORD_NAME.test(name)) continue;
    rmSync(join(stateDir, name), { force: true });
    removed.push(join(stateDir, name));
  }
  return removed;
}

/**
 * Reads the record for `vni`: undefined when there is none; a reason when the file is unusable
 * (the caller logs it and publishes the derived MAC). The file is ours, but it is input all the
 * same: anything but a record for this VNI with a unicast MAC is refused.
 */
export function readAdoptedVtep(stateDir: string, vni: number, family: 4 | 6 = 4): AdoptedVtepRead | undefined {
  const path = adoptedVtepPath(stateDir, vni, family);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { ok: false, reason: `cannot read ${path}: ${(err as Error).message}` };
  }
  return parseAdoptedVtep(text, vni, path);
}

export function parseAdoptedVtep(text: string, vni: number, path: string): AdoptedVtepRead {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: `${path} is not valid JSON` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: `${path} does not hold an object` };
  const r = raw as Record<string, unknown>;
  if (r['vni'] !== vni) return { ok: false, reason: `${path}: vni ${JSON.stringify(r['vni'])} is not ${vni}` };
  let mac: Buffer;
  try {
    mac = parseMac(r['mac'] as string);
  } catch {
    return { ok: false, reason: `${path}: mac ${JSON.stringify(r['mac'])} is not a MAC address` };
  }
  if (!isUnicastMac(mac)) return { ok: false, reason: `${path}: mac ${JSON.stringify(r['mac'])} is not a unicast MAC` };
  const adoptedFrom = typeof r['adoptedFrom'] === 'string' ? r['adoptedFrom'] : 'unknown';
  const at = typeof r['at'] === 'string' ? r['at'] : 'unknown';
  return { ok: true, vtep: { vni, mac: formatMac(mac), adoptedFrom, at } };
}
