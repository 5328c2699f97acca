import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { NetlinkError, UnsupportedByKernelError, ensureBridge, ensureVxlan, IncompatibleLinkError } from '../../src/netlink/index.js';
import { canUseNetns, useScratchNamespaces } from './scratch.js';

interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  master?: string;
  linkinfo?: { info_kind: string; info_data?: Record<string, unknown> };
}

describe.skipIf(!canUseNetns)('netlink links', () => {
  const scratch = useScratchNamespaces();

  it('creates a bridge and reads it back like ip does', async () => {
    const { nl, ipJson } = await scratch('br');
    await nl.createBridge({ name: 'cni0', mtu: 1450, mac: '02:aa:00:00:00:01' });
    const [ip] = await ipJson<IpLink[]>('-d', 'link', 'show', 'cni0');
    expect(ip?.linkinfo?.info_kind).toBe('bridge');
    expect(ip?.mtu).toBe(1450);
    expect(ip?.address).toBe('02:aa:00:00:00:01');
    const ours = await nl.requireLink('cni0');
    expect(ours).toMatchObject({ index: ip?.ifindex, name: 'cni0', kind: 'bridge', mtu: 1450, mac: '02:aa:00:00:00:01', up: false });
    expect(await nl.getLink(ip!.ifindex)).toMatchObject({ name: 'cni0' });
    expect((await nl.listLinks()).map((l) => l.name).sort()).toEqual(['cni0', 'lo']);
  });

  it('sets up/down, MTU, MAC, master, name, and deletes', async () => {
    const { nl, ipJson } = await scratch('set');
    await nl.createBridge({ name: 'br0' });
    await nl.createVeth({ name: 'v0', peerName: 'v1' });
    await nl.setUp('br0');
    await nl.setMtu('v0', 1400);
    await nl.setMac('v0', '02:bb:00:00:00:02');
    await nl.setMaster('v0', 'br0');
    await nl.setLink('v1', { name: 'peer1', up: true });
    let [v0] = await ipJson<IpLink[]>('link', 'show', 'v0');
    expect(v0).toMatchObject({ mtu: 1400, address: '02:bb:00:00:00:02', master: 'br0' });
    const [br] = await ipJson<IpLink[]>('link', 'show', 'br0');
    expect(br?.flags).toContain('UP');
    const [peer] = await ipJson<IpLink[]>('link', 'show', 'peer1');
    expect(peer?.flags).toContain('UP');
    await nl.setMaster('v0', null);
    await nl.setUp('br0', false);
    [v0] = await ipJson<IpLink[]>('link', 'show', 'v0');
    expect(v0?.master).toBeUndefined();
    expect((await ipJson<IpLink[]>('link', 'show', 'br0'))[0]?.flags).not.toContain('UP');
    await nl.deleteLink('v0');
    const names = (await ipJson<IpLink[]>('link', 'show')).map((l) => l.ifname);
    expect(names).not.toContain('v0');
    expect(names).not.toContain('peer1'); // deleting one end of a veth removes both
  });

  it('creates a veth pair with its peer directly in another namespace, and moves links', async () => {
    const host = await scratch('host');
    const pod = await scratch('pod');
    await host.nl.createVeth({ name: 'veth0', peerName: 'eth0', peerNetnsPath: pod.path, mtu: 1450 });
    const [hostEnd] = await host.ipJson<IpLink[]>('-d', 'link', 'show', 'veth0');
    const [podEnd] = await pod.ipJson<IpLink[]>('-d', 'link', 'show', 'eth0');
    expect(hostEnd?.linkinfo?.info_kind).toBe('veth');
    expect(podEnd?.linkinfo?.info_kind).toBe('veth');
    expect(podEnd?.mtu).toBe(1450);
    expect((await pod.nl.requireLink('eth0')).linkIndex).toBe(hostEnd?.ifindex);

    await host.nl.createVeth({ name: 'movable', peerName: 'stays' });
    await host.nl.moveToNetns('movable', pod.path);
    expect(await host.nl.getLink('movable')).toBeUndefined();
    expect((await pod.ipJson<IpLink[]>('link', 'show', 'movable'))[0]?.ifname).toBe('movable');

    // Bridges are netns-local; the kernel's extack reason reaches the caller.
    await host.nl.createBridge({ name: 'br0' });
    await expect(host.nl.moveToNetns('br0', pod.path)).rejects.toMatchObject({ code: 'EINVAL', extack: 'The interface netns is immutable' });
  });

  it('creates a VXLAN device with VNI, port, local IP, underlay and learning off', async () => {
    const { nl, ipJson } = await scratch('vx');
    await nl.createVeth({ name: 'eth0', peerName: 'eth0p' });
    const underlay = await nl.requireLink('eth0');
    await nl.createVxlan({ name: 'twill.1', vni: 1, port: 8472, localIp: '198.18.0.1', underlayIndex: underlay.index, learning: false, mtu: 1450 });
    const [ip] = await ipJson<IpLink[]>('-d', 'link', 'show', 'twill.1');
    expect(ip?.linkinfo?.info_kind).toBe('vxlan');
    expect(ip?.linkinfo?.info_data).toMatchObject({ id: 1, port: 8472, local: '198.18.0.1', link: 'eth0', learning: false });
    expect(ip?.mtu).toBe(1450);
    const ours = await nl.requireLink('twill.1');
    expect(ours.vxlan).toEqual({ vni: 1, port: 8472, localIp: '198.18.0.1', underlayIndex: underlay.index, learning: false, gbp: false });

    await nl.createVxlan({ name: 'vxgbp', vni: 4096, port: 4789, gbp: true });
    const [gbp] = await ipJson<IpLink[]>('-d', 'link', 'show', 'vxgbp');
    expect(gbp?.linkinfo?.info_data).toMatchObject({ id: 4096, port: 4789, gbp: true });
  });

  it('reports a kernel without IPIP as a typed error, or creates the device where IPIP exists', async () => {
    const { nl, ipJson } = await scratch('ipip');
    let created = false;
    try {
      await nl.createIpip({ name: 'tunl9', localIp: '198.18.0.1' });
      created = true;
    } catch (err) {
      expect(err).toBeInstanceOf(UnsupportedByKernelError);
      const e = err as UnsupportedByKernelError;
      expect(e.code).toBe('EOPNOTSUPP');
      expect(e.extack).toBe('Unknown device type');
      expect(e.message).toMatch(/lacks ipip/);
      expect(e.message).toContain('tunl9');
    }
    if (created) {
      const [ip] = await ipJson<IpLink[]>('-d', 'link', 'show', 'tunl9');
      expect(ip?.linkinfo?.info_kind).toBe('ipip');
    }
  });

  it('names the errno, the operation and the object on kernel errors', async () => {
    const { nl } = await scratch('err');
    await nl.createBridge({ name: 'dup0' });
    const dup = await nl.createBridge({ name: 'dup0' }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(NetlinkError);
    expect(dup).toMatchObject({ code: 'EEXIST', errno: 17, op: 'link.create', target: 'bridge dup0' });
    const missing = await nl.requireLink('nope0').catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'ENODEV', target: 'nope0' });
    expect(await nl.getLink('nope0')).toBeUndefined();
    const gone = await nl.deleteLink(99999).catch((e: unknown) => e);
    expect(gone).toMatchObject({ code: 'ENODEV', op: 'link.delete' });
    // By name: one request, and the same error when there is no such link.
    expect(await nl.deleteLink('nope0').catch((e: unknown) => e)).toMatchObject({ code: 'ENODEV', op: 'link.delete', target: 'nope0' });
    await nl.createBridge({ name: 'byname0' });
    await nl.deleteLink('byname0');
    expect(await nl.getLink('byname0')).toBeUndefined();
  });

  it('rejects bad input with a typed error naming the value, before touching the kernel', async () => {
    const { nl } = await scratch('bad');
    const longName = 'this-name-is-too-long';
    await expect(nl.createBridge({ name: longName })).rejects.toThrow(InvalidArgumentError);
    await expect(nl.createBridge({ name: longName })).rejects.toThrow(longName);
    await expect(nl.createBridge({ name: 'br0', mac: '02:00:00:00:01' })).rejects.toThrow(/MAC address "02:00:00:00:01".*5 octets/);
    await expect(nl.createBridge({ name: 'br0', mac: 'zz:00:00:00:00:01' })).rejects.toThrow(InvalidArgumentError);
    await expect(nl.createVxlan({ name: 'vx0', vni: 1 << 24, port: 8472 })).rejects.toThrow(/VNI 16777216/);
    await expect(nl.createVeth({ name: 'v0', peerName: 'v1', peerNetnsPath: '/run/netns/does-not-exist' }))
      .rejects.toMatchObject({ code: 'ENOENT', target: '/run/netns/does-not-exist' });
    expect((await nl.listLinks()).map((l) => l.name)).toEqual(['lo']);
  });

  it('ensureBridge/ensureVxlan are idempotent and refuse incompatible links unless asked', async () => {
    const { nl, ipJson } = await scratch('ens');
    const first = await ensureBridge(nl, { name: 'cni0', mtu: 1500 });
    expect(first.changes).toEqual(['created', 'up']);
    const again = await ensureBridge(nl, { name: 'cni0', mtu: 1500 });
    expect(again.changes).toEqual([]);
    expect(again.link.index).toBe(first.link.index);
    const mtu = await ensureBridge(nl, { name: 'cni0', mtu: 1450 });
    expect(mtu.changes).toEqual(['mtu 1500->1450']);
    expect((await ipJson<IpLink[]>('link', 'show', 'cni0'))[0]?.mtu).toBe(1450);

    const spec = { name: 'twill.1', vni: 1, port: 8472, localIp: '198.18.0.1', mtu: 1450 };
    await ensureVxlan(nl, spec);
    expect((await ensureVxlan(nl, spec)).changes).toEqual([]);
    const clash = await ensureVxlan(nl, { ...spec, vni: 2 }).catch((e: unknown) => e);
    expect(clash).toBeInstanceOf(IncompatibleLinkError);
    expect((clash as IncompatibleLinkError).differences).toEqual(['VNI is 1, want 2']);
    const wrongKind = await ensureVxlan(nl, { ...spec, name: 'cni0' }).catch((e: unknown) => e);
    expect(wrongKind).toMatchObject({ code: 'EINCOMPATIBLE', differences: ['kind is bridge, want vxlan'] });
    const recreated = await ensureVxlan(nl, { ...spec, vni: 2 }, { recreate: true });
    expect(recreated.changes[0]).toBe('recreated');
    expect((await ipJson<IpLink[]>('-d', 'link', 'show', 'twill.1'))[0]?.linkinfo?.info_data).toMatchObject({ id: 2 });
  });
});
