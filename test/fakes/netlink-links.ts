/**
 * The links of the in-memory kernel, with their addresses (their neighbours and FDB entries are
 * netlink-neighbours.ts', their routes netlink-routes.ts'). It models what Twill's code relies on:
 *   - ifindexes count up and are never reused; a new link is down; a name is unique (EEXIST);
 *     a missing link is ENODEV;
 *   - kinds bridge, veth (both ends, or one with the peer in another namespace), vxlan (one per
 *     VNI, port and local address: EEXIST), ipip, dummy, and plain devices (kind undefined, a
 *     NIC) that a test adds with `addDevice`;
 *   - carrier: a veth has it while its peer is up (a peer in another namespace counts as up), a
 *     bridge while one of its ports is up with carrier, a device while the test says so
 *     (`setCarrier`), anything else always. `operUp` is reported as the kernel's operstate is:
 *     UP for NICs, veths and bridges that are up with carrier; vxlan, ipip, dummy and lo say
 *     UNKNOWN, so never operUp;
 *   - taking a link down flushes its neighbours (permanent ones too: arp_ifdown) but keeps its
 *     FDB (vxlan_flush keeps permanent entries) and addresses; deleting it (or moving it to
 *     another namespace) drops all of them. What that does to routes, the kernel's hooks do.
 * Every change to a link is announced to `subscribe`rs ('new' or 'deleted'), as RTNLGRP_LINK does.
 */
import { InvalidArgumentError } from '../../src/core/errors.js';
import { validateIfname } from '../../src/core/ifname.js';
import { parseCidr, parseIp } from '../../src/core/ip.js';
import type { Address, BridgeSpec, IpipSpec, Link, LinkChanges, LinkEvent, LinkRef, VethSpec, VxlanSpec } from '../../src/netlink/index.js';
import { canonicalCidr, canonicalIp, canonicalMac, kernelError } from './netlink-errors.js';
import { FakeNeighbours } from './netlink-neighbours.js';

/** A link as the fake keeps it; `link()` turns it into what a dump reports. */
interface LinkState {
  readonly index: number;
  name: string;
  readonly kind: string | undefined;
  mtu: number;
  mac: string | undefined;
  up: boolean;
  /** For devices the test added: whether the cable is in. */
  cable: boolean;
  masterIndex: number | undefined;
  hairpin: boolean | undefined;
  /** A veth's other end in this namespace; undefined when it lives in another one. */
  peerIndex: number | undefined;
  readonly vxlan: Link['vxlan'];
  readonly ipip: Link['ipip'];
}

/** What the routing side must do when links change (netlink-kernel.ts wires it to the route table). */
export interface LinkHooks {
  /** The link went down or away: the kernel flushes every route and nexthop through it. */
  flushDevice(index: number): void;
  /** The link came up (or got an address while up): its connected routes appear. */
  addConnected(index: number, cidr: string): void;
  removeConnected(index: number, cidr: string): void;
}

const UNKNOWN_OPERSTATE = new Set(['vxlan', 'ipip', 'dummy']);
const VXLAN_HEADROOM = 50;
const IPIP_HEADROOM = 20;

export class FakeLinks {
  private readonly links = new Map<number, LinkState>();
  private readonly addresses: { index: number; cidr: string; family: 4 | 6 }[] = [];
  /** The neighbours and FDB entries of these links. */
  readonly neighbours = new FakeNeighbours((index, op) => this.state(index, op).kind);
  private readonly listeners = new Set<(event: LinkEvent) => void>();
  private nextIndex = 1;

  constructor(private readonly hooks: LinkHooks) {
    this.add({ name: 'lo', kind: undefined, mtu: 65536, mac: '00:00:00:00:00:00' });
    this.setLink(1, { up: true }, 'link.set');
  }

  /** Link notifications, delivered synchronously; FakeNetlink's watches make them asynchronous. */
  subscribe(listener: (event: LinkEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- reading ---------------------------------------------------------------------------------

  getLink(ref: LinkRef): Link | undefined {
    const state = this.find(ref);
    return state && this.link(state);
  }

  requireLink(ref: LinkRef, op: string): Link {
    return this.link(this.state(ref, op));
  }

  listLinks(): Link[] {
    return [...this.links.values()].map((l) => this.link(l));
  }

  isUp(index: number): boolean {
    return this.links.get(index)?.up ?? false;
  }

  hasCarrier(index: number): boolean {
    const l = this.links.get(index);
    return l !== undefined && this.carrier(l);
  }

  /** True when `ip` is an address of some link here (a gateway may not be one). */
  isLocalAddress(ip: string): boolean {
    return this.addresses.some((a) => a.cidr.slice(0, a.cidr.indexOf('/')) === ip);
  }

  listAddresses(index?: number): Address[] {
    return this.addresses.filter((a) => index === undefined || a.index === index)
      .map((a) => ({ index: a.index, cidr: a.cidr, family: a.family, label: a.family === 4 ? this.links.get(a.index)!.name : undefined }));
  }

  // ---- links -----------------------------------------------------------------------------------

  /** A device the host has (a NIC, kind undefined, or a dummy), as a test sets one up. */
  addDevice(spec: { name: string; kind?: 'dummy'; mtu?: number; mac?: string; up?: boolean }): Link {
    validateOptionalMtu(spec.mtu);
    const state = this.add({ name: spec.name, kind: spec.kind, mtu: spec.mtu ?? 1500, mac: spec.mac });
    if (spec.up ?? true) this.setLink(state.index, { up: true }, 'link.set');
    return this.link(state);
  }

  /** Plugs a device's cable in or out (only devices added with addDevice have one). */
  setCarrier(ref: LinkRef, carrier: boolean): void {
    const l = this.state(ref, 'link.set');
    l.cable = carrier;
    this.announce('new', l);
  }

  createBridge(spec: BridgeSpec): void {
    validateOptionalMtu(spec.mtu);
    this.add({ name: spec.name, kind: 'bridge', mtu: spec.mtu ?? 1500, mac: spec.mac });
  }

  createVeth(spec: VethSpec): void {
    validateIfname(spec.peerName);
    validateOptionalMtu(spec.mtu);
    this.checkNew('veth', spec.name);
    if (spec.peerNetnsPath === undefined) this.checkNew('veth', spec.peerName);
    const a = this.add({ name: spec.name, kind: 'veth', mtu: spec.mtu ?? 1500, mac: spec.mac });
    if (spec.peerNetnsPath !== undefined) return;
    const b = this.add({ name: spec.peerName, kind: 'veth', mtu: spec.mtu ?? 1500, mac: spec.peerMac });
    a.peerIndex = b.index;
    b.peerIndex = a.index;
  }

  createVxlan(spec: VxlanSpec): void {
    if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni > 0xffffff) throw new InvalidArgumentError('VXLAN VNI', spec.vni, 'must be an integer 0..16777215 (24 bits, RFC 7348)');
    if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw new InvalidArgumentError('VXLAN port', spec.port, 'must be an integer 1..65535');
    validateOptionalMtu(spec.mtu);
    const localIp = spec.localIp === undefined ? undefined : canonicalIp(spec.localIp, 'VXLAN local IP');
    const underlay = spec.underlayIndex === undefined ? undefined : this.state(spec.underlayIndex, 'link.create');
    this.checkNew('vxlan', spec.name);
    // vxlan_config_validate(): one device per VNI, UDP port and local address.
    const clash = [...this.links.values()].find((l) => l.vxlan?.vni === spec.vni && l.vxlan.port === spec.port && l.vxlan.localIp === localIp);
    if (clash) throw kernelError('link.create', 'EEXIST', `vxlan ${spec.name}`, 'A VXLAN device with the specified VNI already exists');
    this.add({
      name: spec.name, kind: 'vxlan', mtu: spec.mtu ?? (underlay ? underlay.mtu - VXLAN_HEADROOM : 1450), mac: spec.mac,
      vxlan: { vni: spec.vni, port: spec.port, localIp, underlayIndex: spec.underlayIndex, learning: spec.learning ?? false, gbp: spec.gbp ?? false },
    });
  }

  createIpip(spec: IpipSpec): void {
    const localIp = spec.localIp === undefined ? undefined : parseIp(spec.localIp, 'IPIP local IP');
    if (localIp && localIp.family !== 4) throw new InvalidArgumentError('IPIP local IP', spec.localIp, 'IPIP carries IPv4 only');
    validateOptionalMtu(spec.mtu);
    const underlay = spec.underlayIndex === undefined ? undefined : this.state(spec.underlayIndex, 'link.create');
    this.checkNew('ipip', spec.name);
    // ip_tunnel_find(): one tunnel per set of parameters.
    const clash = [...this.links.values()].find((l) => l.ipip && l.ipip.localIp === localIp?.text && l.ipip.underlayIndex === spec.underlayIndex);
    if (clash) throw kernelError('link.create', 'EEXIST', `ipip ${spec.name}`);
    this.add({
      name: spec.name, kind: 'ipip', mtu: spec.mtu ?? (underlay ? underlay.mtu - IPIP_HEADROOM : 1480), mac: undefined,
      ipip: { localIp: localIp?.text, underlayIndex: spec.underlayIndex },
    });
  }

  setLink(ref: LinkRef, changes: LinkChanges, op: string): void {
    validateOptionalMtu(changes.mtu);
    if (changes.name !== undefined) validateIfname(changes.name);
    const mac = changes.mac === undefined ? undefined : canonicalMac(changes.mac);
    if (changes.hairpin !== undefined && changes.masterIndex !== undefined) {
      throw new InvalidArgumentError('link changes', 'hairpin with masterIndex', 'enslave the port first, then set hairpin');
    }
    const l = this.state(ref, op);
    if (changes.netnsPath !== undefined) {
      this.remove(l); // it lives on in the other namespace, which this fake does not model
      return;
    }
    if (changes.name !== undefined && changes.name !== l.name && this.find(changes.name)) throw kernelError(op, 'EEXIST', changes.name);
    if (changes.masterIndex !== undefined && changes.masterIndex !== 0) {
      const master = this.links.get(changes.masterIndex);
      if (!master) throw kernelError(op, 'EINVAL', `index ${changes.masterIndex}`);
      if (master.kind !== 'bridge') throw kernelError(op, 'EOPNOTSUPP', `index ${changes.masterIndex}`);
    }
    if (changes.hairpin !== undefined && l.masterIndex === undefined) throw kernelError(op, 'EOPNOTSUPP', l.name);
    if (changes.name !== undefined) l.name = changes.name;
    if (changes.mtu !== undefined) l.mtu = changes.mtu;
    if (mac !== undefined) l.mac = mac;
    if (changes.masterIndex !== undefined) {
      l.masterIndex = changes.masterIndex === 0 ? undefined : changes.masterIndex;
      l.hairpin = l.masterIndex === undefined ? undefined : false;
    }
    if (changes.hairpin !== undefined) l.hairpin = changes.hairpin;
    if (changes.up !== undefined && changes.up !== l.up) this.setUpState(l, changes.up);
    this.announce('new', l);
    if (l.peerIndex !== undefined && changes.up !== undefined) this.announce('new', this.links.get(l.peerIndex)!);
  }

  deleteLink(ref: LinkRef, op: string): void {
    const l = this.state(ref, op);
    const peer = l.peerIndex === undefined ? undefined : this.links.get(l.peerIndex);
    this.remove(l);
    if (peer) this.remove(peer); // a veth goes with its peer
  }

  // ---- addresses -------------------------------------------------------------------------------

  addAddress(index: number, cidr: string, op: string, replace: boolean): void {
    const want = canonicalCidr(cidr);
    const l = this.state(index, op);
    // __inet_insert_ifa(): the same address with the same prefix on the device is EEXIST.
    if (this.addresses.some((a) => a.index === index && a.cidr === want)) {
      if (replace) return;
      throw kernelError(op, 'EEXIST', `${want} on index ${index}`);
    }
    const family = parseCidr(want).address.family;
    this.addresses.push({ index, cidr: want, family });
    if (l.up) this.hooks.addConnected(index, want);
  }

  deleteAddress(index: number, cidr: string, op: string): void {
    const want = canonicalCidr(cidr);
    this.state(index, op);
    const at = this.addresses.findIndex((a) => a.index === index && a.cidr === want);
    if (at < 0) throw kernelError(op, 'EADDRNOTAVAIL', `${want} on index ${index}`);
    this.addresses.splice(at, 1);
    this.hooks.removeConnected(index, want);
  }

  // ---- internals -------------------------------------------------------------------------------

  private find(ref: LinkRef): LinkState | undefined {
    if (typeof ref === 'number') return this.links.get(ref);
    validateIfname(ref);
    return [...this.links.values()].find((l) => l.name === ref);
  }

  private state(ref: LinkRef, op: string): LinkState {
    const l = this.find(ref);
    if (!l) throw kernelError(op, 'ENODEV', typeof ref === 'number' ? `index ${ref}` : ref);
    return l;
  }

  private checkNew(kind: string, name: string): void {
    validateIfname(name);
    if (this.find(name)) throw kernelError('link.create', 'EEXIST', `${kind} ${name}`);
  }

  private add(spec: { name: string; kind: string | undefined; mtu: number; mac: string | undefined; vxlan?: Link['vxlan']; ipip?: Link['ipip'] }): LinkState {
    this.checkNew(spec.kind ?? 'device', spec.name);
    const index = this.nextIndex++;
    const mac = spec.mac !== undefined ? canonicalMac(spec.mac) : spec.kind === 'ipip' ? undefined : generatedMac(index);
    const state: LinkState = {
      index, name: spec.name, kind: spec.kind, mtu: spec.mtu, mac, up: false, cable: true, masterIndex: undefined, hairpin: undefined,
      peerIndex: undefined, vxlan: spec.vxlan, ipip: spec.ipip,
    };
    this.links.set(index, state);
    this.announce('new', state);
    return state;
  }

  private setUpState(l: LinkState, up: boolean): void {
    l.up = up;
    if (up) {
      for (const a of this.addresses) if (a.index === l.index) this.hooks.addConnected(l.index, a.cidr);
      return;
    }
    this.hooks.flushDevice(l.index);
    this.neighbours.flushDevice(l.index, false);
  }

  private remove(l: LinkState): void {
    this.hooks.flushDevice(l.index);
    this.links.delete(l.index);
    for (let i = this.addresses.length - 1; i >= 0; i--) if (this.addresses[i]!.index === l.index) this.addresses.splice(i, 1);
    this.neighbours.flushDevice(l.index, true);
    this.announce('deleted', l);
    for (const port of this.links.values()) {
      if (port.masterIndex === l.index) {
        port.masterIndex = undefined;
        port.hairpin = undefined;
        this.announce('new', port);
      }
    }
    const peer = l.peerIndex === undefined ? undefined : this.links.get(l.peerIndex);
    if (peer) peer.peerIndex = undefined;
  }

  private carrier(l: LinkState): boolean {
    if (l.kind === 'veth') return l.peerIndex === undefined || this.links.get(l.peerIndex)!.up;
    if (l.kind === 'bridge') return [...this.links.values()].some((p) => p.masterIndex === l.index && p.up && this.carrier(p));
    return l.cable;
  }

  private link(l: LinkState): Link {
    const operUp = l.up && this.carrier(l) && !UNKNOWN_OPERSTATE.has(l.kind ?? '') && l.name !== 'lo';
    const tunnelLink = l.vxlan ? l.vxlan.underlayIndex ?? 0 : l.ipip ? l.ipip.underlayIndex ?? 0 : undefined;
    return {
      index: l.index, name: l.name, kind: l.kind, mtu: l.mtu, mac: l.mac, up: l.up, masterIndex: l.masterIndex,
      linkIndex: l.kind === 'veth' ? l.peerIndex : tunnelLink, linkNetnsId: undefined,
      vxlan: l.vxlan && { ...l.vxlan }, ipip: l.ipip && { ...l.ipip }, operUp, hairpin: l.hairpin,
    };
  }

  private announce(type: LinkEvent['type'], l: LinkState): void {
    const event: LinkEvent = { type, link: this.link(l) };
    for (const listener of [...this.listeners]) listener(event);
  }
}

/** As the real encoder (links.ts) checks an MTU before it sends it. */
function validateOptionalMtu(mtu: number | undefined): void {
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) throw new InvalidArgumentError('MTU', mtu, 'must be an integer 68..65535');
}

/** A locally administered MAC from the index, so runs are repeatable (the kernel picks a random one). */
function generatedMac(index: number): string {
  return `02:fa:6b:00:${((index >> 8) & 0xff).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
}
