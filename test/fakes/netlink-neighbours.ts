/**
 * The neighbour (ARP) entries and FDB entries of the in-memory kernel's links (netlink-links.ts
 * owns this and tells it when a link goes down or away):
 *   - `replaceNeighbour` makes a permanent entry (ip -> mac on a device); deleting a missing one
 *     is ENOENT; a link going down loses all of its entries, permanent ones too (arp_ifdown);
 *   - FDB entries live on VXLAN devices only (EOPNOTSUPP elsewhere), as a list of VTEPs per MAC:
 *     `replace` points the MAC's first VTEP elsewhere, `append` adds one (EEXIST if present);
 *     deleting names one (mac, dst) pair or, without dst, the MAC; missing is ENOENT. They
 *     survive the device going down (vxlan_flush keeps permanent entries).
 * A missing device is ENODEV, as its links say.
 */
import type { FdbEntry, FdbSpec, Neighbour, NeighbourSpec } from '../../src/netlink/index.js';
import { canonicalIp, canonicalMac, kernelError } from './netlink-errors.js';

/** NUD_PERMANENT and NUD_REACHABLE (include/uapi/linux/neighbour.h). */
const NUD_PERMANENT = 0x80;
const NUD_REACHABLE = 0x02;

export class FakeNeighbours {
  private readonly neighbours = new Map<string, Neighbour>();
  /** index|mac -> the VTEPs of that MAC, in order (VXLAN keeps a list of remotes per MAC). */
  private readonly fdb = new Map<string, { index: number; mac: string; dsts: string[] }>();

  /** `kindOf(index, op)`: the device's kind; throws ENODEV (for `op`) when there is none. */
  constructor(private readonly kindOf: (index: number, op: string) => string | undefined) {}

  listNeighbours(index?: number): Neighbour[] {
    return [...this.neighbours.values()].filter((n) => index === undefined || n.index === index).map((n) => ({ ...n }));
  }

  listFdb(index?: number): FdbEntry[] {
    return [...this.fdb.values()].filter((e) => index === undefined || e.index === index)
      .flatMap((e) => e.dsts.map((dst) => ({ index: e.index, mac: e.mac, dst, permanent: true, self: true, masterIndex: undefined })));
  }

  replaceNeighbour(spec: NeighbourSpec, op: string): void {
    const ip = canonicalIp(spec.ip, 'neighbour IP');
    const mac = canonicalMac(spec.mac);
    this.kindOf(spec.index, op);
    this.neighbours.set(`${spec.index}|${ip}`, { index: spec.index, ip, mac, state: NUD_PERMANENT, permanent: true });
  }

  /** A neighbour the kernel learnt by itself (ARP), for tests: not permanent. */
  learnNeighbour(index: number, ip: string, mac: string): void {
    this.kindOf(index, 'neighbour.add');
    this.neighbours.set(`${index}|${canonicalIp(ip)}`, { index, ip: canonicalIp(ip), mac: canonicalMac(mac), state: NUD_REACHABLE, permanent: false });
  }

  deleteNeighbour(spec: { index: number; ip: string }, op: string): void {
    const key = `${spec.index}|${canonicalIp(spec.ip, 'neighbour IP')}`;
    this.kindOf(spec.index, op);
    if (!this.neighbours.delete(key)) throw kernelError(op, 'ENOENT', spec.ip);
  }

  /** NLM_F_REPLACE points an existing MAC's first VTEP elsewhere; NLM_F_APPEND adds one more (EEXIST if present). */
  writeFdb(spec: FdbSpec, op: string, mode: 'replace' | 'append'): void {
    const mac = canonicalMac(spec.mac);
    const dst = canonicalIp(spec.dst, 'FDB destination IP');
    if (this.kindOf(spec.index, op) !== 'vxlan') throw kernelError(op, 'EOPNOTSUPP', `${mac} dst ${dst}`);
    const key = `${spec.index}|${mac}`;
    const entry = this.fdb.get(key);
    if (!entry) this.fdb.set(key, { index: spec.index, mac, dsts: [dst] });
    else if (mode === 'replace') entry.dsts[0] = dst;
    else if (entry.dsts.includes(dst)) throw kernelError(op, 'EEXIST', `${mac} dst ${dst}`);
    else entry.dsts.push(dst);
  }

  deleteFdb(spec: { index: number; mac: string; dst?: string | undefined }, op: string): void {
    const mac = canonicalMac(spec.mac);
    const dst = spec.dst === undefined ? undefined : canonicalIp(spec.dst, 'FDB destination IP');
    this.kindOf(spec.index, op);
    const key = `${spec.index}|${mac}`;
    const entry = this.fdb.get(key);
    const target = `${mac}${dst ? ` dst ${dst}` : ''}`;
    if (!entry) throw kernelError(op, 'ENOENT', target);
    if (dst === undefined) {
      this.fdb.delete(key);
      return;
    }
    const at = entry.dsts.indexOf(dst);
    if (at < 0) throw kernelError(op, 'ENOENT', target);
    entry.dsts.splice(at, 1);
    if (entry.dsts.length === 0) this.fdb.delete(key);
  }

  /** The device went down (its neighbours go) or away (its FDB entries too). */
  flushDevice(index: number, gone: boolean): void {
    for (const [key, n] of this.neighbours) if (n.index === index) this.neighbours.delete(key);
    if (gone) for (const [key, e] of this.fdb) if (e.index === index) this.fdb.delete(key);
  }
}
