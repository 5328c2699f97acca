import { afterEach, describe, expect, it } from 'vitest';
import type { Network, RemoteLease } from '../../src/backends/backend.js';
import { deriveVtepMac } from '../../src/backends/vxlan/mac.js';
import { vxlanBackend } from '../../src/backends/vxlan/vxlan.js';
import { RTPROT_TWILL } from '../../src/netlink/index.js';
import { fakeHost } from '../fakes/backend-context.js';
import type { FakeNetlink } from '../fakes/netlink.js';
import { waitFor } from '../helpers/wait.js';

// The vxlan backend's Network through register(), on the in-memory kernel: its device, and the
// neighbour, FDB entry and route per peer (the options, lease data and pure plan are in
// backend-vxlan.test.ts; test/netns/backend-vxlan.test.ts carries traffic through real devices).

const macOf = (n: number, variant = 0): string => `02:00:00:00:${variant.toString(16).padStart(2, '0')}:${n.toString(16).padStart(2, '0')}`;
const peer = (n: number, mac = macOf(n)): RemoteLease =>
  ({ subnet: `10.244.${n}.0/24`, publicIp: `198.18.0.${n}`, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } });

/** What twill.1 carries, as `ip neigh`, `bridge fdb` and `ip route` would list it. */
async function entries(nl: FakeNetlink): Promise<{ neighbours: string[]; fdb: string[]; routes: string[] }> {
  const dev = await nl.requireLink('twill.1');
  return {
    neighbours: (await nl.listNeighbours(dev.index)).map((n) => `${n.ip} ${n.mac ?? '-'}${n.permanent ? ' permanent' : ''}`).sort(),
    fdb: (await nl.listFdb(dev.index)).map((e) => `${e.mac} dst ${e.dst ?? '-'}`).sort(),
    routes: (await nl.listRoutes({ protocol: RTPROT_TWILL })).map((r) => `${r.dst} via ${r.gateway ?? '-'}${r.oif === dev.index ? ' dev twill.1' : ''}${r.onlink ? ' onlink' : ''}`).sort(),
  };
}

const expected = (...ns: number[]): Awaited<ReturnType<typeof entries>> => ({
  neighbours: ns.map((n) => `10.244.${n}.0 ${macOf(n)} permanent`),
  fdb: ns.map((n) => `${macOf(n)} dst 198.18.0.${n}`),
  routes: ns.map((n) => `10.244.${n}.0/24 via 10.244.${n}.0 dev twill.1 onlink`),
});

const stops: (() => Promise<void>)[] = [];
afterEach(async () => { for (const stop of stops.splice(0)) await stop(); });

async function started(opts: Parameters<typeof fakeHost>[0] = {}): Promise<{ nl: FakeNetlink; network: Network }> {
  const { nl, ctx } = fakeHost(opts);
  const network = await vxlanBackend.register(ctx, vxlanBackend.parseOptions({}));
  await network.start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1' });
  return { nl, network };
}

describe('vxlan network on the fake kernel', () => {
  it('creates twill.1 at register (VNI 1, port 8472, learning off, over eth0, MTU eth0-50, derived MAC, up) and gives it the lease\'s /32 at start', async () => {
    const { nl, ctx, eth0 } = fakeHost({ mtu: 1500 });
    const network = await vxlanBackend.register(ctx, vxlanBackend.parseOptions({}));
    const mac = deriveVtepMac('198.18.0.1', 1);
    expect(await nl.requireLink('twill.1')).toMatchObject({
      kind: 'vxlan', mtu: 1450, mac, up: true, vxlan: { vni: 1, port: 8472, localIp: '198.18.0.1', underlayIndex: eth0.index, learning: false, gbp: false },
    });
    expect([network.mtu, network.leaseData]).toEqual([1450, { VNI: 1, VtepMAC: mac }]);
    expect(await nl.listAddresses('twill.1')).toEqual([]);
    await network.start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1' });
    expect((await nl.listAddresses('twill.1')).map((a) => a.cidr)).toEqual(['10.244.1.0/32']);
  });

  it('sets a MAC changed by hand back in place, never by recreating twill.1 (even when it changes during the repair)', async () => {
    const { nl, network } = await started();
    await network.sync([peer(2)]);
    const before = await nl.requireLink('twill.1');
    nl.clearWrites();
    nl.kernel.links.setLink('twill.1', { mac: '02:12:34:56:78:9a' }, 'link.set');
    expect((await network.sync([peer(2)])).changes).toBeGreaterThan(0);
    // Changed again while the repair reads the device (at its second look): still set back in place.
    let looks = 0;
    nl.before('link.get', () => { if (++looks === 2) nl.kernel.links.setLink('twill.1', { mac: '02:12:34:56:78:9b' }, 'link.set'); }, { times: 5 });
    await network.sync([peer(2)]);
    await network.sync([peer(2)]); // the next resync, should the change have come after the device's repair
    const after = await nl.requireLink('twill.1');
    expect([after.index, after.mac]).toEqual([before.index, before.mac]);
    expect(nl.writeLog().filter((w) => w.startsWith('link.delete') || w.startsWith('link.create'))).toEqual([]);
    expect(await entries(nl)).toEqual(expected(2));
  });

  it('writes a neighbour, an FDB entry and an onlink route per peer; a converged sync writes nothing', async () => {
    const { nl, network } = await started();
    expect(await network.sync([peer(2), peer(3)])).toEqual({ changes: 6, skipped: [] });
    expect(await entries(nl)).toEqual(expected(2, 3));
    nl.clearWrites();
    expect(await network.sync([peer(2), peer(3)])).toEqual({ changes: 0, skipped: [] });
    expect(nl.writeLog()).toEqual([]);
  });

  it('follows a peer\'s new VtepMAC (its old FDB entry goes), and removes a departed peer\'s three entries', async () => {
    const { nl, network } = await started();
    await network.sync([peer(2), peer(3)]);
    await network.sync([peer(2, macOf(2, 9)), peer(3)]);
    const moved = await entries(nl);
    expect(moved.neighbours).toEqual([`10.244.2.0 ${macOf(2, 9)} permanent`, `10.244.3.0 ${macOf(3)} permanent`]);
    expect(moved.fdb).toEqual([`${macOf(3)} dst 198.18.0.3`, `${macOf(2, 9)} dst 198.18.0.2`]);
    await network.sync([peer(3)]);
    expect(await entries(nl)).toEqual(expected(3));
    expect(await nl.listNexthops()).toHaveLength(1);
  });

  it('recreates a deleted twill.1 at once and replays every entry; one taken down comes back up with its entries', async () => {
    const { nl, network } = await started(); // resync every hour: only the link events can repair in time
    await network.sync([peer(2), peer(3)]);
    running(network);
    await waitFor(() => nl.openWatches === 1, { what: 'the link watch' });
    const before = (await nl.requireLink('twill.1')).index;
    nl.kernel.links.deleteLink('twill.1', 'link.delete');
    expect(await nl.listRoutes({ protocol: RTPROT_TWILL })).toEqual([]);
    await waitFor(async () => (await nl.getLink('twill.1')) && (await entries(nl)).routes.length === 2, { what: 'twill.1 and its entries back', timeoutMs: 2000 });
    expect(await entries(nl)).toEqual(expected(2, 3));
    expect((await nl.requireLink('twill.1')).index).not.toBe(before);
    expect((await nl.listAddresses('twill.1')).map((a) => a.cidr)).toEqual(['10.244.1.0/32']);

    nl.kernel.links.setLink('twill.1', { up: false }, 'link.set'); // the kernel drops its routes and neighbours
    expect((await entries(nl)).neighbours).toEqual([]);
    await waitFor(async () => (await nl.requireLink('twill.1')).up && (await entries(nl)).neighbours.length === 2, { what: 'twill.1 up again, repaired', timeoutMs: 2000 });
    await waitFor(async () => (await entries(nl)).routes.length === 2, { what: 'routes back', timeoutMs: 2000 });
    expect(await entries(nl)).toEqual(expected(2, 3));
  });
});

function running(network: Network): void {
  const ac = new AbortController();
  const done = network.run(ac.signal);
  stops.push(async () => { ac.abort(); await done; });
}
