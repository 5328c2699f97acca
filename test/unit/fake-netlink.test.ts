import { describe, expect, it } from 'vitest';
import { isNetlinkError, RTPROT_TWILL, type LinkEvent } from '../../src/netlink/index.js';
import { FakeNetlink } from '../fakes/netlink.js';
import { waitFor } from '../helpers/wait.js';

// The in-memory kernel answers as the kernel does where Twill's code depends on it: the unit
// tests built on it are only as good as these behaviours (the netns tier checks the real ones).

const errnoOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (err: unknown) => (isNetlinkError(err) ? err.code : String(err)));

function host(): { nl: FakeNetlink; eth0: number } {
  const nl = new FakeNetlink();
  return { nl, eth0: nl.kernel.addUplink('eth0', '198.18.0.1/24').index };
}

describe('FakeNetlink', () => {
  it('routes: add is EXCL against any owner, replace overwrites, delete is ESRCH when nothing matches; Twill\'s protocol by default', async () => {
    const { nl, eth0 } = host();
    await nl.addRoute({ dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: eth0, protocol: 4 });
    expect(await errnoOf(nl.addRoute({ dst: '10.244.2.0/24', gateway: '198.18.0.3', oif: eth0 }))).toBe('EEXIST');
    expect(await errnoOf(nl.addRoute({ dst: '10.244.3.0/24', gateway: '198.18.9.9', oif: eth0 }))).toBe('ENETUNREACH');
    await nl.addRoute({ dst: '10.244.3.0/24', gateway: '198.18.9.9', oif: eth0, onlink: true });
    // Deletes name Twill's protocol unless told otherwise: the static route is not Twill's to delete.
    expect(await errnoOf(nl.deleteRoute({ dst: '10.244.2.0/24' }))).toBe('ESRCH');
    await nl.replaceRoute({ dst: '10.244.2.0/24', gateway: '198.18.0.3', oif: eth0 });
    const routes = await nl.listRoutes({ family: 4 });
    expect(routes.map((r) => `${r.dst} ${r.gateway ?? '-'} ${r.protocol}${r.onlink ? ' onlink' : ''}`)).toEqual([
      '198.18.0.0/24 - 2', `10.244.2.0/24 198.18.0.3 ${RTPROT_TWILL}`, `10.244.3.0/24 198.18.9.9 ${RTPROT_TWILL} onlink`,
    ]);
  });

  it('nexthops: EEXIST on a taken id, ENETDOWN without carrier, listed through their routes; deleting one deletes its routes', async () => {
    const { nl, eth0 } = host();
    await nl.addNexthop({ id: 7, gateway: '198.18.0.2', oif: eth0 });
    expect(await errnoOf(nl.addNexthop({ id: 7, gateway: '198.18.0.3', oif: eth0 }))).toBe('EEXIST');
    await nl.addRoute({ dst: '10.244.2.0/24', nexthopId: 7 });
    expect((await nl.listRoutes({ oif: eth0, protocol: RTPROT_TWILL }))[0]).toMatchObject({ dst: '10.244.2.0/24', nexthopId: 7, gateway: '198.18.0.2', oif: eth0 });
    // Named by its nexthop only: with a device the kernel finds no such route.
    expect(await errnoOf(nl.deleteRoute({ dst: '10.244.2.0/24', oif: eth0 }))).toBe('ESRCH');
    await nl.deleteNexthop(7);
    expect(await nl.listRoutes({ protocol: RTPROT_TWILL })).toEqual([]);
    expect(await errnoOf(nl.deleteNexthop(7))).toBe('ENOENT');
    nl.kernel.links.setCarrier('eth0', false);
    expect(await errnoOf(nl.addNexthop({ id: 8, gateway: '198.18.0.2', oif: eth0 }))).toBe('ENETDOWN');
    await nl.addRoute({ dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: eth0 }); // a route is only flagged linkdown
    expect(await errnoOf(new FakeNetlink({ nexthops: false }).listNexthops())).toBe('EOPNOTSUPP');
  });

  it('links: down flushes routes, nexthops and neighbours but keeps FDB and addresses; up brings the connected route back; watches see it all', async () => {
    const { nl, eth0 } = host();
    const events: string[] = [];
    const watch = nl.watchLinks();
    watch.on('link', (e: LinkEvent) => events.push(`${e.type} ${e.link.name} ${e.link.up ? 'up' : 'down'}`));
    await nl.createVxlan({ name: 'twill.1', vni: 1, port: 8472, underlayIndex: eth0, mac: '02:00:00:00:00:01' });
    expect(await errnoOf(nl.createVxlan({ name: 'twill.2', vni: 1, port: 8472 }))).toBe('EEXIST'); // one device per VNI and port
    expect(await errnoOf(nl.createBridge({ name: 'twill.1' }))).toBe('EEXIST');
    const vx = await nl.requireLink('twill.1');
    expect(vx).toMatchObject({ kind: 'vxlan', mtu: 1450, up: false, vxlan: { vni: 1, port: 8472, learning: false } });
    await nl.setUp(vx.index);
    await nl.addNexthop({ id: 1, gateway: '10.244.2.0', oif: vx.index, onlink: true });
    await nl.addRoute({ dst: '10.244.2.0/24', nexthopId: 1 });
    await nl.replaceNeighbour({ index: vx.index, ip: '10.244.2.0', mac: '02:00:00:00:00:02' });
    await nl.replaceFdb({ index: vx.index, mac: '02:00:00:00:00:02', dst: '198.18.0.2' });
    await nl.addRoute({ dst: '10.244.3.0/24', gateway: '198.18.0.3', oif: eth0 });
    await nl.setUp('eth0', false);
    expect((await nl.listRoutes()).map((r) => r.dst)).toEqual(['10.244.2.0/24']);
    await nl.setUp(vx.index, false);
    expect([await nl.listRoutes(), await nl.listNexthops(), await nl.listNeighbours(vx.index)]).toEqual([[], [], []]);
    expect(await nl.listFdb(vx.index)).toMatchObject([{ mac: '02:00:00:00:00:02', dst: '198.18.0.2', permanent: true, self: true }]);
    await nl.setUp('eth0');
    expect((await nl.listRoutes()).map((r) => `${r.dst} ${r.protocol}`)).toEqual(['198.18.0.0/24 2']);
    await nl.deleteLink('twill.1');
    expect(await nl.listFdb()).toEqual([]);
    expect(await errnoOf(nl.deleteLink('twill.1'))).toBe('ENODEV');
    await waitFor(() => events.includes('deleted twill.1 down'), { what: 'the deletion event' });
    expect(events).toEqual(['new twill.1 down', 'new twill.1 up', 'new eth0 down', 'new twill.1 down', 'new eth0 up', 'deleted twill.1 down']);
    watch.close();
    expect(nl.openWatches).toBe(0);
  });

  it('batches fail entry by entry with their tokens; injected faults and the write log', async () => {
    const { nl, eth0 } = host();
    nl.fail('route.add', 'ENOBUFS', { when: (r) => r.dst === '10.244.3.0/24', times: 1 });
    const failures = await nl.batch<string>()
      .addRoute({ dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: eth0 }, 'two')
      .addRoute({ dst: '10.244.3.0/24', gateway: '198.18.0.3', oif: eth0 }, 'three')
      .addRoute({ dst: '10.244.4.1/24', gateway: '198.18.0.4', oif: eth0 }, 'host bits')
      .deleteRoute({ dst: '10.244.9.0/24' }, 'absent')
      .commit();
    expect(failures.map((f) => `${f.token}: ${(f.error as { code?: string }).code}`)).toEqual(['three: ENOBUFS', 'host bits: EINVAL_ARG', 'absent: ESRCH']);
    expect(nl.writeLog()).toEqual([
      'route.add 10.244.2.0/24', 'route.add 10.244.3.0/24 !ENOBUFS', 'route.add 10.244.4.1/24 !EINVAL_ARG', 'route.delete 10.244.9.0/24 !ESRCH',
    ]);
    await nl.addRoute({ dst: '10.244.3.0/24', gateway: '198.18.0.3', oif: eth0 }); // the fault was for once
    nl.writeSysctl('net.ipv4.ip_forward', 1);
    expect(nl.readSysctl('net/ipv4/ip_forward')).toBe('1');
  });
});
