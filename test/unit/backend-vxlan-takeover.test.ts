import { readFileSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackendContext } from '../../src/backends/backend.js';
import { parseVxlanOptions } from '../../src/backends/vxlan/config.js';
import { deriveVtepMac } from '../../src/backends/vxlan/mac.js';
import { decideTakeover, isFlannelDirectRoute, RTPROT_BOOT, type TakeoverInput } from '../../src/backends/vxlan/takeover-plan.js';
import { chooseVtep } from '../../src/backends/vxlan/vtep-choice.js';
import { adoptedVtepPath, parseAdoptedVtep, readAdoptedVtep, writeAdoptedVtep } from '../../src/backends/vxlan/vtep-state.js';
import type { Link, Netlink, Route } from '../../src/netlink/index.js';
import { CleanupRegistry, tempDir } from '../helpers/cleanup.js';

// The pure parts of taking over a host that flanneld left (takeover-plan.ts), and the choice of
// the VTEP MAC with its record (vtep-choice.ts, vtep-state.ts), over fake links and routes.

const LOCAL = '198.18.0.1';
const FLANNEL_MAC = '7e:2b:4c:11:22:33';

function vxlanLink(over: Partial<Link> & { vni?: number; port?: number; localIp?: string | undefined } = {}): Link {
  const { vni = 1, port = 8472, localIp, ...link } = over;
  return {
    index: 9, name: 'flannel.1', kind: 'vxlan', mtu: 1450, mac: FLANNEL_MAC, up: true, masterIndex: undefined, linkIndex: 2,
    linkNetnsId: undefined, ipip: undefined, operUp: true, hairpin: undefined,
    vxlan: { vni, port, localIp: 'localIp' in over ? localIp : LOCAL, underlayIndex: 2, learning: false, gbp: false },
    ...link,
  };
}

const input = (links: Link[], over: Partial<TakeoverInput> = {}): TakeoverInput => ({ links, vni: 1, port: 8472, localIp: LOCAL, flanneldPids: [], ...over });

describe('takeover decision', () => {
  it('takes over flannel.<VNI> of the same VNI and port, keeping its MAC', () => {
    expect(decideTakeover(input([vxlanLink()]))).toEqual({
      action: 'take-over',
      device: { name: 'flannel.1', index: 9, mac: FLANNEL_MAC, localIp: LOCAL },
      adoptMac: FLANNEL_MAC,
      why: expect.stringContaining(`keeping flannel.1's MAC ${FLANNEL_MAC}`),
    });
    expect(decideTakeover(input([vxlanLink({ name: 'flannel.4096', vni: 4096 })], { vni: 4096 }))).toMatchObject({ action: 'take-over', adoptMac: FLANNEL_MAC });
  });

  it('leaves alone what is not flannel\'s device for this VNI and port', () => {
    for (const links of [
      [],
      [vxlanLink({ name: 'vxlan0' })], // same VNI and port, another name: EVXLAN_CONFLICT's case
      [vxlanLink({ port: 4789 })], // coexists with twill.1 on 8472
      [vxlanLink({ vni: 2 })], // flannel.1 with VNI 2 is not flannel's name for VNI 2 anyway
      [vxlanLink({ kind: 'bridge', vxlan: undefined })],
      [vxlanLink({ name: 'flannel.2', vni: 2 })],
    ]) {
      expect(decideTakeover(input(links, { flanneldPids: [42] }))).toEqual({ action: 'none' });
    }
  });

  it('refuses while flanneld runs in this namespace, naming the pids', () => {
    const d = decideTakeover(input([vxlanLink()], { flanneldPids: [4242, 77] }));
    expect(d.action).toBe('refuse');
    expect(d.action === 'refuse' && d.error).toMatchObject({
      code: 'EFLANNELD_RUNNING',
      message: expect.stringMatching(/^flanneld \(pid 4242, 77\) is running in this network namespace and owns flannel\.1 \(VNI 1, port 8472\): stop flanneld first/),
    });
  });

  it('takes the device but publishes its own MAC when flannel\'s tunnelled from another address or has no unicast MAC', () => {
    expect(decideTakeover(input([vxlanLink({ localIp: '198.18.0.99' })]))).toMatchObject({
      action: 'take-over', adoptMac: undefined, why: expect.stringContaining('tunnels from 198.18.0.99, not from 198.18.0.1'),
    });
    expect(decideTakeover(input([vxlanLink({ localIp: undefined })]))).toMatchObject({ action: 'take-over', adoptMac: undefined });
    expect(decideTakeover(input([vxlanLink({ mac: '01:00:5e:00:00:01' })]))).toMatchObject({
      action: 'take-over', adoptMac: undefined, why: expect.stringContaining('no unicast MAC (01:00:5e:00:00:01)'),
    });
    expect(decideTakeover(input([vxlanLink({ mac: undefined })]))).toMatchObject({ action: 'take-over', adoptMac: undefined });
  });
});

describe('flannel DirectRouting route pattern', () => {
  const EXT = 2;
  const ctx = { clusterNetwork: '10.244.0.0/16', extIndex: EXT, onLink: (ip: string) => ip.startsWith('198.18.0.') };
  /** `ip route replace 10.244.9.0/24 via 198.18.0.3 dev eth0` as flanneld writes it. */
  const flannels: Route = {
    family: 4, dst: '10.244.9.0/24', gateway: '198.18.0.3', oif: EXT, table: 254, protocol: RTPROT_BOOT, scope: 0, type: 1,
    onlink: false, metric: undefined, prefsrc: undefined, nexthopId: undefined,
  };

  it('matches flanneld\'s route exactly (a metric of 0 is no metric)', () => {
    expect(isFlannelDirectRoute(flannels, ctx)).toBe(true);
    expect(isFlannelDirectRoute({ ...flannels, metric: 0 }, ctx)).toBe(true);
  });

  it.each<[string, Partial<Route>]>([
    ['Twill\'s own protocol', { protocol: 84 }],
    ['protocol static (an operator\'s)', { protocol: 4 }],
    ['another table', { table: 100 }],
    ['a metric', { metric: 100 }],
    ['a preferred source', { prefsrc: '198.18.0.1' }],
    ['the onlink flag', { onlink: true }],
    ['a nexthop object', { nexthopId: 7, gateway: undefined, oif: undefined }],
    ['another device (flannel.1, twill.1)', { oif: 9 }],
    ['no gateway', { gateway: undefined, scope: 253 }],
    ['a gateway off the external link', { gateway: '192.0.2.7' }],
    ['a gateway inside the cluster network', { gateway: '10.244.9.0' }],
    ['the whole cluster network', { dst: '10.244.0.0/16' }],
    ['a wider prefix', { dst: '10.0.0.0/8' }],
    ['a destination outside the cluster network', { dst: '10.99.9.0/24' }],
    ['a blackhole or other type', { type: 6 }],
    ['IPv6', { family: 6, dst: 'fd00::/64', gateway: 'fe80::1' }],
  ])('leaves a route with %s alone', (_, over) => {
    expect(isFlannelDirectRoute({ ...flannels, ...over }, ctx)).toBe(false);
  });
});

describe('the adopted VTEP MAC', () => {
  const dirs = new CleanupRegistry('vtep state dirs');
  const stateDir = (): string => tempDir('vtep', dirs);
  afterEach(() => dirs.runAll());

  const warnings: unknown[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(JSON.parse(line)); } });
  const fakeNetlink = (links: Link[]): Netlink => ({ netnsPath: undefined, listLinks: () => Promise.resolve(links) }) as unknown as Netlink;
  const ctxFor = (dir: string, links: Link[]): BackendContext => ({
    log, netlink: fakeNetlink(links), clusterNetwork: '10.244.0.0/16', stateDir: dir, resyncIntervalMs: 1000,
    extIface: { name: 'eth0', index: 2, mtu: 1500, address: LOCAL, publicIp: LOCAL },
  });
  const options = parseVxlanOptions({});
  const noFlanneld = (): number[] => [];

  it('adopts flannel\'s MAC and records it; a restart without flannel\'s device keeps it', async () => {
    const dir = stateDir();
    const first = await chooseVtep(ctxFor(dir, [vxlanLink()]), options, noFlanneld);
    expect(first).toMatchObject({ mac: FLANNEL_MAC, source: 'adopted from flannel.1', flannel: { action: 'take-over' } });
    expect(JSON.parse(readFileSync(adoptedVtepPath(dir, 1), 'utf8'))).toMatchObject({ vni: 1, mac: FLANNEL_MAC, adoptedFrom: 'flannel.1' });
    const again = await chooseVtep(ctxFor(dir, [vxlanLink({ name: 'twill.1', mac: FLANNEL_MAC })]), options, noFlanneld);
    expect(again).toMatchObject({ mac: FLANNEL_MAC, source: expect.stringMatching(/^adopted from flannel\.1 at \d{4}-/), flannel: undefined });
  });

  it('derives the MAC without flannel\'s device or record, and when flannel\'s MAC cannot be kept (forgetting an old record)', async () => {
    const derived = deriveVtepMac(LOCAL, 1);
    expect(await chooseVtep(ctxFor(stateDir(), []), options, noFlanneld)).toEqual({ mac: derived, source: 'derived from PublicIP and VNI', flannel: undefined });
    const dir = stateDir();
    writeAdoptedVtep(dir, { vni: 1, mac: '02:00:00:00:00:01', adoptedFrom: 'flannel.1', at: 'then' });
    const choice = await chooseVtep(ctxFor(dir, [vxlanLink({ localIp: '198.18.0.99' })]), options, noFlanneld);
    expect(choice).toMatchObject({ mac: derived, flannel: { action: 'take-over', adoptMac: undefined } });
    expect(readAdoptedVtep(dir, 1)).toBeUndefined();
  });

  it('refuses to start while flanneld runs, naming its pid', async () => {
    await expect(chooseVtep(ctxFor(stateDir(), [vxlanLink()]), options, () => [31337])).rejects.toMatchObject({
      code: 'EFLANNELD_RUNNING', message: expect.stringContaining('flanneld (pid 31337)'),
    });
  });

  it('ignores a damaged record with a warning naming the problem, and publishes the derived MAC', async () => {
    const dir = stateDir();
    writeFileSync(adoptedVtepPath(dir, 1), '{"vni":1,"mac":"ff:ff:ff:ff:ff:ff"}');
    warnings.length = 0;
    expect((await chooseVtep(ctxFor(dir, []), options, noFlanneld)).mac).toBe(deriveVtepMac(LOCAL, 1));
    expect(warnings).toEqual([expect.objectContaining({ reason: expect.stringContaining('mac "ff:ff:ff:ff:ff:ff" is not a unicast MAC') })]);
  });

  it('reads records strictly', () => {
    const path = '/x/vxlan-1-vtep.json';
    expect(parseAdoptedVtep('{"vni":1,"mac":"7E:2B:4C:11:22:33","adoptedFrom":"flannel.1","at":"t"}', 1, path))
      .toEqual({ ok: true, vtep: { vni: 1, mac: FLANNEL_MAC, adoptedFrom: 'flannel.1', at: 't' } });
    expect(parseAdoptedVtep('{"vni":1,"mac":"7e:2b:4c:11:22:33"}', 1, path)).toMatchObject({ ok: true, vtep: { adoptedFrom: 'unknown', at: 'unknown' } });
    for (const [text, reason] of [
      ['{"vni":1,', 'is not valid JSON'],
      ['[1]', 'does not hold an object'],
      ['null', 'does not hold an object'],
      ['{"vni":2,"mac":"7e:2b:4c:11:22:33"}', 'vni 2 is not 1'],
      ['{"vni":"1","mac":"7e:2b:4c:11:22:33"}', 'vni "1" is not 1'],
      ['{"vni":1,"mac":"7e:2b:4c:11:22"}', 'mac "7e:2b:4c:11:22" is not a MAC address'],
      ['{"vni":1,"mac":42}', 'mac 42 is not a MAC address'],
      ['{"vni":1,"mac":"00:00:00:00:00:00"}', 'is not a unicast MAC'],
    ] as const) {
      expect(parseAdoptedVtep(text, 1, path)).toEqual({ ok: false, reason: expect.stringContaining(reason) });
    }
  });
});
