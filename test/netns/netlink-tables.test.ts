import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { NetlinkError, RTPROT_TWILL, ensureAddress } from '../../src/netlink/index.js';
import { canUseNetns, useScratchNamespaces, type Scratch } from './scratch.js';

interface IpAddr { ifname: string; addr_info: { family: string; local: string; prefixlen: number }[] }
interface IpRoute { dst: string; gateway?: string; dev: string; protocol?: string; scope?: string; flags: string[]; metric?: number; table?: string }
interface IpNeigh { dst: string; lladdr: string; state: string[] }
interface BridgeFdb { mac: string; dst?: string; flags: string[]; state: string }

/** A namespace with an up VXLAN device, the way the vxlan backend will use it. */
async function withVxlan(s: Scratch): Promise<number> {
  await s.nl.createVeth({ name: 'eth0', peerName: 'eth0p' });
  await s.nl.setUp('eth0');
  await s.nl.setUp('eth0p');
  await s.nl.addAddress('eth0', '198.18.0.1/24');
  await s.nl.createVxlan({ name: 'twill.1', vni: 1, port: 8472, localIp: '198.18.0.1' });
  await s.nl.setUp('twill.1');
  return (await s.nl.requireLink('twill.1')).index;
}

describe.skipIf(!canUseNetns)('netlink addresses, routes, neighbours, FDB', () => {
  const scratch = useScratchNamespaces();

  it('adds, replaces, lists and deletes addresses (IPv4 and IPv6)', async () => {
    const s = await scratch('addr');
    await s.nl.createBridge({ name: 'cni0' });
    await s.nl.addAddress('cni0', '10.244.1.1/24');
    await s.nl.replaceAddress('cni0', '10.244.1.1/24'); // replace of the same address: no error
    await s.nl.addAddress('cni0', 'fd00:10:244:1::1/64');
    const [ip] = await s.ipJson<IpAddr[]>('addr', 'show', 'dev', 'cni0');
    const got = ip!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
    expect(got).toEqual(expect.arrayContaining(['10.244.1.1/24', 'fd00:10:244:1::1/64']));
    const ours = (await s.nl.listAddresses('cni0')).map((a) => a.cidr);
    expect(ours.sort()).toEqual([...got].sort());
    // IPv4 gets its subnet's broadcast address (as `ip addr add ... brd +`), a /32 none.
    await s.nl.addAddress('cni0', '10.244.200.7/32');
    const v4 = (await s.ipJson<{ addr_info: { local: string; broadcast?: string }[] }[]>('addr', 'show', 'dev', 'cni0'))[0]!.addr_info;
    expect(v4.find((a) => a.local === '10.244.1.1')?.broadcast).toBe('10.244.1.255');
    expect(v4.find((a) => a.local === '10.244.200.7')).not.toHaveProperty('broadcast');
    await expect(s.nl.addAddress('cni0', '10.244.1.1/24')).rejects.toMatchObject({ code: 'EEXIST', op: 'address.add' });
    expect(await ensureAddress(s.nl, 'cni0', '10.244.1.1/24')).toBe(false);
    expect(await ensureAddress(s.nl, 'cni0', '10.244.9.1/24')).toBe(true);
    await s.nl.deleteAddress('cni0', '10.244.1.1/24');
    const after = (await s.ipJson<IpAddr[]>('addr', 'show', 'dev', 'cni0'))[0]!.addr_info.map((a) => a.local);
    expect(after).not.toContain('10.244.1.1');
    expect(after).toContain('10.244.9.1');
    await expect(s.nl.addAddress('cni0', '10.244.1.300/24')).rejects.toThrow(/interface address "10.244.1.300\/24"/);
    await expect(s.nl.addAddress('cni0', '10.244.1.1')).rejects.toThrow(InvalidArgumentError);
  });

  it('replaces routes with Twill\'s protocol, onlink, scope, table and metric; deletes only its own', async () => {
    const s = await scratch('route');
    const vx = await withVxlan(s);
    await s.nl.replaceRoute({ dst: '10.244.2.0/24', gateway: '10.244.2.0', oif: vx, onlink: true });
    await s.nl.replaceRoute({ dst: '10.244.3.0/24', oif: vx, scope: 'link' });
    await s.nl.replaceRoute({ dst: '10.244.4.0/24', gateway: '198.18.0.4', table: 1000, metric: 20 });
    const main = await s.ipJson<IpRoute[]>('route', 'show', 'table', 'main', 'proto', String(RTPROT_TWILL));
    expect(main).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'twill.1', flags: ['onlink'] }),
      expect.objectContaining({ dst: '10.244.3.0/24', dev: 'twill.1', scope: 'link' }),
    ]));
    expect(main).toHaveLength(2);
    const t1000 = await s.ipJson<IpRoute[]>('route', 'show', 'table', '1000');
    expect(t1000).toEqual([expect.objectContaining({ dst: '10.244.4.0/24', gateway: '198.18.0.4', metric: 20 })]);

    const ours = await s.nl.listRoutes({ protocol: RTPROT_TWILL });
    expect(ours.map((r) => r.dst).sort()).toEqual(['10.244.2.0/24', '10.244.3.0/24']);
    expect(ours.find((r) => r.dst === '10.244.2.0/24')).toMatchObject({ gateway: '10.244.2.0', oif: vx, onlink: true, protocol: RTPROT_TWILL });
    expect(await s.nl.listRoutes({ table: 1000 })).toEqual([expect.objectContaining({ dst: '10.244.4.0/24', metric: 20, table: 1000 })]);

    // Replacing points the same prefix elsewhere instead of adding a second route.
    await s.nl.replaceRoute({ dst: '10.244.2.0/24', gateway: '10.244.2.0', oif: vx, onlink: true, metric: 0 });
    expect((await s.ipJson<IpRoute[]>('route', 'show', '10.244.2.0/24'))).toHaveLength(1);

    // A route that is not Twill's (kernel's connected route) survives a delete with our protocol.
    await expect(s.nl.deleteRoute({ dst: '198.18.0.0/24' })).rejects.toMatchObject({ code: 'ESRCH', op: 'route.delete' });
    expect(await s.ipJson<IpRoute[]>('route', 'show', '198.18.0.0/24')).toHaveLength(1);
    await s.nl.deleteRoute({ dst: '10.244.2.0/24', gateway: '10.244.2.0', oif: vx });
    await s.nl.deleteRoute({ dst: '10.244.4.0/24', table: 1000 });
    expect(await s.ipJson<IpRoute[]>('route', 'show', 'proto', String(RTPROT_TWILL))).toEqual([expect.objectContaining({ dst: '10.244.3.0/24' })]);
    expect(await s.ipJson<IpRoute[]>('route', 'show', 'table', '1000')).toEqual([]);

    await s.nl.replaceRoute({ dst: 'fd00:10:244:2::/64', gateway: 'fe80::1', oif: vx });
    expect((await s.nl.listRoutes({ family: 6, protocol: RTPROT_TWILL })).map((r) => r.dst)).toEqual(['fd00:10:244:2::/64']);

    await expect(s.nl.replaceRoute({ dst: '10.244.5.1/24', oif: vx })).rejects.toThrow(/route destination "10.244.5.1\/24": host bits are set/);
    await expect(s.nl.replaceRoute({ dst: '10.244.5.0/24', gateway: 'fd00::1', oif: vx })).rejects.toThrow(/is IPv6 but the destination/);
    const unreachable = await s.nl.replaceRoute({ dst: '10.244.5.0/24', gateway: '10.9.9.9' }).catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(NetlinkError);
    expect(unreachable).toMatchObject({ code: 'ENETUNREACH', extack: 'Nexthop has invalid gateway', target: '10.244.5.0/24' });
  });

  it('replaces, lists and deletes permanent neighbours', async () => {
    const s = await scratch('neigh');
    const vx = await withVxlan(s);
    await s.nl.replaceNeighbour({ index: vx, ip: '10.244.2.0', mac: '02:00:00:00:00:02' });
    await s.nl.replaceNeighbour({ index: vx, ip: '10.244.3.0', mac: '02:00:00:00:00:03' });
    await s.nl.replaceNeighbour({ index: vx, ip: '10.244.3.0', mac: '02:00:00:00:00:33' });
    const ip = await s.ipJson<IpNeigh[]>('neigh', 'show', 'dev', 'twill.1');
    expect(ip).toEqual(expect.arrayContaining([
      { dst: '10.244.2.0', lladdr: '02:00:00:00:00:02', state: ['PERMANENT'] },
      { dst: '10.244.3.0', lladdr: '02:00:00:00:00:33', state: ['PERMANENT'] },
    ]));
    expect(ip).toHaveLength(2);
    // The layer reports every entry, including the NOARP IPv6 multicast ones the kernel adds by
    // itself (MLD) that `ip neigh show` hides by default: compare with `nud all`.
    // Read ours first: entries the kernel adds meanwhile may show up in `all` only.
    const ours = await s.nl.listNeighbours(vx);
    const all = await s.ipJson<IpNeigh[]>('neigh', 'show', 'nud', 'all', 'dev', 'twill.1');
    expect(all.map((n) => `${n.dst} ${n.lladdr}`)).toEqual(expect.arrayContaining(ours.map((n) => `${n.ip} ${n.mac}`)));
    expect(ours.filter((n) => n.permanent).map((n) => [n.ip, n.mac]).sort()).toEqual([
      ['10.244.2.0', '02:00:00:00:00:02'], ['10.244.3.0', '02:00:00:00:00:33']]);
    await s.nl.deleteNeighbour({ index: vx, ip: '10.244.2.0' });
    expect((await s.ipJson<IpNeigh[]>('neigh', 'show', 'dev', 'twill.1')).map((n) => n.dst)).toEqual(['10.244.3.0']);
    expect((await s.nl.listNeighbours(vx)).filter((n) => n.permanent).map((n) => n.ip)).toEqual(['10.244.3.0']);
    await expect(s.nl.deleteNeighbour({ index: vx, ip: '10.244.2.0' })).rejects.toMatchObject({ code: 'ENOENT', op: 'neighbour.delete' });
    await expect(s.nl.replaceNeighbour({ index: vx, ip: '10.244.2.0', mac: '02:00:00:00:00:02:03' })).rejects.toThrow(/7 octets/);
  });

  it('appends, replaces, lists and deletes FDB entries on the VXLAN device', async () => {
    const s = await scratch('fdb');
    const vx = await withVxlan(s);
    await s.nl.appendFdb({ index: vx, mac: '02:00:00:00:00:02', dst: '198.18.0.2' });
    await s.nl.appendFdb({ index: vx, mac: '00:00:00:00:00:00', dst: '198.18.0.2' });
    await s.nl.appendFdb({ index: vx, mac: '00:00:00:00:00:00', dst: '198.18.0.3' });
    let fdb = await s.bridgeJson<BridgeFdb[]>('fdb', 'show', 'dev', 'twill.1');
    const pairs = (rows: { mac: string; dst?: string | undefined }[]): string[] => rows.map((e) => `${e.mac}>${e.dst}`).sort();
    expect(pairs(fdb)).toEqual(['00:00:00:00:00:00>198.18.0.2', '00:00:00:00:00:00>198.18.0.3', '02:00:00:00:00:02>198.18.0.2']);
    expect(fdb.every((e) => e.flags.includes('self') && e.state === 'permanent')).toBe(true);
    expect(pairs(await s.nl.listFdb(vx))).toEqual(pairs(fdb));

    // The VTEP moved: replace points the MAC at the new address only.
    await s.nl.replaceFdb({ index: vx, mac: '02:00:00:00:00:02', dst: '198.18.0.9' });
    await s.nl.deleteFdb({ index: vx, mac: '00:00:00:00:00:00', dst: '198.18.0.3' });
    fdb = await s.bridgeJson<BridgeFdb[]>('fdb', 'show', 'dev', 'twill.1');
    expect(pairs(fdb)).toEqual(['00:00:00:00:00:00>198.18.0.2', '02:00:00:00:00:02>198.18.0.9']);
    await s.nl.deleteFdb({ index: vx, mac: '02:00:00:00:00:02', dst: '198.18.0.9' });
    await expect(s.nl.deleteFdb({ index: vx, mac: '02:00:00:00:00:02', dst: '198.18.0.9' })).rejects.toMatchObject({ code: 'ENOENT', op: 'fdb.delete' });
    expect(pairs(await s.bridgeJson<BridgeFdb[]>('fdb', 'show', 'dev', 'twill.1'))).toEqual(['00:00:00:00:00:00>198.18.0.2']);
  });
});
