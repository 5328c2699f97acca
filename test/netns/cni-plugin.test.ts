import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cleanup.js';
import { addressFiles, bedCall as call, bedConf as conf, CNI_MODES, CNI_SHIM, createCniBed, masqueradedPods, resultAddress, startCniServer, vethNames, writeSubnetFile, type CniBed, type CniCallOptions } from '../helpers/cni.js';
import { run } from '../helpers/exec.js';
import { createTestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

/*
 * The CNI conformance suite (cni.md §7), against the real kernel in throwaway namespaces: a
 * "host" namespace where the plugin runs (bridge cni0, host veth ends) and one namespace per pod.
 * Each case runs twice: through the agent's socket (the thick-plugin path runtimes normally take)
 * and with no agent (the shim's in-process fallback), which must behave the same.
 */

const VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
const GATEWAY = '10.244.7.1';

for (const mode of CNI_MODES) {
  describe.skipIf(!isRoot || !existsSync(CNI_SHIM))(`twill CNI plugin (${mode})`, () => {
    useCleanup();
    let c: CniBed;
    beforeAll(async () => {
      c = await createCniBed(mode, GATEWAY);
    });

    it('VERSION lists the spec versions and needs nothing else', async () => {
      const r = await call(c, { command: 'VERSION', conf: '{"cniVersion":"1.0.0"}' });
      expect(r.code).toBe(0);
      expect(r.json).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    });

    for (const version of VERSIONS) {
      it(`ADD, CHECK, DEL in ${version}: result shape, kernel state, nothing left`, async () => {
        const pod = await createTestNetns('pod');
        const id = `ctr-${version.replaceAll('.', '')}`;
        const add = await call(c, { command: 'ADD', containerId: id, netns: pod.netnsPath, conf: conf(c, { hairpinMode: true }, version) });
        expect(add.code, add.stdout + add.stderr).toBe(0);
        const result = add.json!;
        expect(result.cniVersion).toBe(version);
        const ifaces = result.interfaces as { name: string; mac?: string; sandbox?: string; mtu?: number }[];
        expect(ifaces.map((i) => i.name)).toEqual(['cni0', expect.stringMatching(/^veth[0-9a-f]{8}$/), 'eth0']);
        expect(ifaces[2]!.sandbox).toBe(pod.netnsPath);
        expect(ifaces[0]!.sandbox).toBeUndefined();
        if (version === '1.1.0') expect(ifaces[2]!.mtu).toBe(1450);
        else expect(ifaces[2]!.mtu).toBeUndefined();
        const ips = result.ips as { address: string; gateway: string; interface: number; version?: string }[];
        expect(ips).toHaveLength(1);
        expect(ips[0]!.interface).toBe(2);
        expect(ips[0]!.gateway).toBe(GATEWAY);
        expect(ips[0]!.version).toBe(version < '1.0.0' ? '4' : undefined);
        const address = ips[0]!.address;
        expect(address).toMatch(/^10\.244\.7\.\d+\/24$/);
        expect(address).not.toBe(`${GATEWAY}/24`);
        expect(result.routes).toEqual([{ dst: '0.0.0.0/0', gw: GATEWAY }, { dst: '10.244.0.0/16' }]);

        // What a user checks with ip -j: the pod's address, MTU and routes; the bridge's gateway.
        const podLink = (await pod.links()).find((l) => l.ifname === 'eth0')!;
        expect(podLink.mtu).toBe(1450);
        expect(podLink.address).toBe(ifaces[2]!.mac);
        expect((await pod.link('eth0'))!.addr_info!.map((a) => `${a.local}/${a.prefixlen}`)).toContain(address);
        // As the reference plugin leaves it: the subnet's broadcast address, no IPv6 DAD, ARP notify.
        expect((await pod.link('eth0'))!.addr_info!.find((a) => a.family === 'inet')).toMatchObject({ broadcast: '10.244.7.255' });
        expect(pod.readSysctl('net/ipv6/conf/eth0/accept_dad')).toBe('0');
        expect(pod.readSysctl('net/ipv4/conf/eth0/arp_notify')).toBe('1');
        const routes = await pod.routes();
        expect(routes.find((r) => r.dst === 'default')?.gateway).toBe(GATEWAY);
        expect(routes.find((r) => r.dst === '10.244.0.0/16')?.gateway).toBe(GATEWAY);
        const bridge = (await c.host.links()).find((l) => l.ifname === 'cni0')!;
        expect(bridge.mtu).toBe(1450);
        expect((await c.host.link('cni0'))!.addr_info!.map((a) => `${a.local}/${a.prefixlen}`)).toContain(`${GATEWAY}/24`);
        const hostEnd = (await c.host.links()).find((l) => l.ifname === ifaces[1]!.name)!;
        expect(hostEnd.master).toBe('cni0');
        expect(hostEnd.mtu).toBe(1450);
        const port = await run('bridge', ['-n', c.host.name, '-j', '-d', 'link', 'show', 'dev', ifaces[1]!.name]);
        expect((JSON.parse(port.stdout) as { hairpin: boolean }[])[0]!.hairpin).toBe(true);
        expect(c.host.readSysctl('net.ipv4.ip_forward')).toBe('1');
        // The pod reaches its gateway through the bridge.
        expect(await pod.ping(GATEWAY)).toBe(true);

        const prevResult = result;
        const check = await call(c, { command: 'CHECK', containerId: id, netns: pod.netnsPath, conf: conf(c, { hairpinMode: true, prevResult }, version) });
        if (version === '0.3.1') {
          expect(check.code).not.toBe(0);
          expect(check.json?.code).toBe(1);
        } else {
          expect(check.code, check.stdout + check.stderr).toBe(0);
          expect(check.stdout).toBe('');
        }

        const del = await call(c, { command: 'DEL', containerId: id, netns: pod.netnsPath, conf: conf(c, { prevResult }, version) });
        expect(del.code, del.stdout + del.stderr).toBe(0);
        expect((await pod.links()).some((l) => l.ifname === 'eth0')).toBe(false);
        expect(await vethNames(c.host)).not.toContain(ifaces[1]!.name);
        expect(addressFiles(c.dataDir)).not.toContain(address.split('/')[0]);
        const again = await call(c, { command: 'DEL', containerId: id, netns: pod.netnsPath, conf: conf(c, {}, version) });
        expect(again.code).toBe(0);
      });
    }

    it('never hands out the network, gateway or broadcast address; exhaustion is code 101 and leaks nothing', async () => {
      const dir = tempDir('cni-small');
      const small = { ...c, subnetFile: writeSubnetFile({ subnet: '10.245.0.1/29', network: '10.245.0.0/16', dir }), dataDir: join(dir, 'ipam') };
      const pods = await Promise.all([0, 1, 2, 3, 4, 5].map(() => createTestNetns('pod')));
      const cfg = (): Record<string, unknown> => conf(small, { bridge: 'cnismall' });
      const got: string[] = [];
      for (const [i, pod] of pods.slice(0, 5).entries()) {
        const r = await call(small, { command: 'ADD', containerId: `small${i}`, netns: pod.netnsPath, conf: cfg() });
        expect(r.code, r.stdout).toBe(0);
        got.push(((r.json!.ips as { address: string }[])[0]!.address));
      }
      expect(got.sort()).toEqual(['10.245.0.2/29', '10.245.0.3/29', '10.245.0.4/29', '10.245.0.5/29', '10.245.0.6/29']);
      const vethsBefore = await vethNames(small.host);
      const full = await call(small, { command: 'ADD', containerId: 'small5', netns: pods[5]!.netnsPath, conf: cfg() });
      expect(full.code).toBe(1);
      expect(full.json?.code).toBe(101);
      expect(full.json?.msg).toMatch(/10\.245\.0\.0\/29/);
      expect(await vethNames(small.host)).toEqual(vethsBefore);
      expect((await pods[5]!.links()).some((l) => l.ifname === 'eth0')).toBe(false);
      expect(addressFiles(small.dataDir)).toHaveLength(5);
      for (const i of [0, 1, 2, 3, 4]) expect((await call(small, { command: 'DEL', containerId: `small${i}`, netns: pods[i]!.netnsPath, conf: cfg() })).code).toBe(0);
      expect(addressFiles(small.dataDir)).toHaveLength(0);
    });

    it('a repeated ADD for the same container and ifname returns the same result; a second ifname works; DEL frees only its own', async () => {
      const pod = await createTestNetns('pod');
      const first = await call(c, { command: 'ADD', containerId: 'dup', netns: pod.netnsPath, conf: conf(c) });
      expect(first.code).toBe(0);
      const repeat = await call(c, { command: 'ADD', containerId: 'dup', netns: pod.netnsPath, conf: conf(c) });
      expect(repeat.code, repeat.stdout).toBe(0);
      expect(repeat.json).toEqual(first.json);
      const second = await call(c, { command: 'ADD', containerId: 'dup', netns: pod.netnsPath, ifname: 'eth1', conf: conf(c, { isDefaultGateway: false }) });
      expect(second.code, second.stdout).toBe(0);
      const a1 = resultAddress(first);
      const a2 = resultAddress(second);
      expect(a1).not.toBe(a2);
      expect((await call(c, { command: 'DEL', containerId: 'dup', netns: pod.netnsPath, ifname: 'eth1', conf: conf(c) })).code).toBe(0);
      expect(addressFiles(c.dataDir)).toContain(a1);
      expect(addressFiles(c.dataDir)).not.toContain(a2);
      expect((await pod.links()).map((l) => l.ifname)).toContain('eth0');
      expect((await call(c, { command: 'DEL', containerId: 'dup', netns: pod.netnsPath, conf: conf(c) })).code).toBe(0);
      expect(addressFiles(c.dataDir)).not.toContain(a1);
    });

    it('an existing interface name fails with nothing leaked', async () => {
      const pod = await createTestNetns('pod');
      await pod.run('ip', ['link', 'add', 'eth0', 'type', 'bridge']);
      const before = addressFiles(c.dataDir).length;
      const vethsBefore = await vethNames(c.host);
      const r = await call(c, { command: 'ADD', containerId: 'exists', netns: pod.netnsPath, conf: conf(c) });
      expect(r.code).toBe(1);
      expect(r.json?.code).toBe(103);
      expect(r.json?.msg).toMatch(/eth0 already exists/);
      expect(addressFiles(c.dataDir)).toHaveLength(before);
      expect(await vethNames(c.host)).toEqual(vethsBefore);
      // The runtime's DEL after the failed ADD succeeds, and leaves the pod's own eth0 alone.
      expect((await call(c, { command: 'DEL', containerId: 'exists', netns: pod.netnsPath, conf: conf(c) })).code).toBe(0);
      expect((await pod.link('eth0'))?.linkinfo?.info_kind).toBe('bridge');
    });

    it('DEL after the namespace vanished frees the address; DEL without ADD or CNI_NETNS succeeds', async () => {
      const pod = await createTestNetns('pod');
      const r = await call(c, { command: 'ADD', containerId: 'vanish', netns: pod.netnsPath, conf: conf(c) });
      expect(r.code).toBe(0);
      const ip = resultAddress(r);
      const path = pod.netnsPath;
      await pod.destroy();
      const del = await call(c, { command: 'DEL', containerId: 'vanish', netns: path, conf: conf(c) });
      expect(del.code, del.stdout).toBe(0);
      expect(addressFiles(c.dataDir)).not.toContain(ip);
      expect((await call(c, { command: 'DEL', containerId: 'never-added', conf: conf(c) })).code).toBe(0);
      expect((await call(c, { command: 'DEL', containerId: 'never-added', conf: conf(c, { prevResult: {} }) })).code).toBe(0);
    });

    it('CHECK fails when the address, the route or the interface is removed', async () => {
      const pod = await createTestNetns('pod');
      const add = await call(c, { command: 'ADD', containerId: 'chk', netns: pod.netnsPath, conf: conf(c) });
      expect(add.code).toBe(0);
      const prevResult = add.json!;
      const address = (prevResult.ips as { address: string }[])[0]!.address;
      const check = (): ReturnType<typeof call> => call(c, { command: 'CHECK', containerId: 'chk', netns: pod.netnsPath, conf: conf(c, { prevResult }) });
      expect((await check()).code).toBe(0);
      await pod.run('ip', ['route', 'del', '10.244.0.0/16']);
      expect((await check()).json?.msg).toMatch(/route 10\.244\.0\.0\/16/);
      await pod.run('ip', ['route', 'add', '10.244.0.0/16', 'via', GATEWAY]);
      expect((await check()).code).toBe(0);
      await pod.run('ip', ['addr', 'del', address, 'dev', 'eth0']);
      expect((await check()).json?.msg).toMatch(/address .* is missing/);
      await pod.run('ip', ['link', 'del', 'eth0']);
      expect((await check()).json?.msg).toMatch(/interface eth0 is missing/);
      const unknown = await call(c, { command: 'CHECK', containerId: 'nobody', netns: pod.netnsPath, conf: conf(c, { prevResult }) });
      expect(unknown.json?.code).toBe(3);
      expect((await call(c, { command: 'DEL', containerId: 'chk', netns: pod.netnsPath, conf: conf(c) })).code).toBe(0);
    });

    it('honours runtimeConfig ips and mac', async () => {
      const pod = await createTestNetns('pod');
      const r = await call(c, { command: 'ADD', containerId: 'static', netns: pod.netnsPath, conf: conf(c, { runtimeConfig: { ips: ['10.244.7.200/24'], mac: '0a:58:0a:f4:07:c8' } }) });
      expect(r.code, r.stdout).toBe(0);
      expect((r.json!.ips as { address: string }[])[0]!.address).toBe('10.244.7.200/24');
      expect((await pod.links()).find((l) => l.ifname === 'eth0')!.address).toBe('0a:58:0a:f4:07:c8');
      const taken = await call(c, { command: 'ADD', containerId: 'static2', netns: (await createTestNetns('pod')).netnsPath, conf: conf(c, { runtimeConfig: { ips: ['10.244.7.200'] } }) });
      expect(taken.json?.code).toBe(102);
      const outside = await call(c, { command: 'ADD', containerId: 'static3', netns: (await createTestNetns('pod')).netnsPath, conf: conf(c, { runtimeConfig: { ips: ['10.9.9.9'] } }) });
      expect(outside.code).toBe(1);
      expect((await call(c, { command: 'DEL', containerId: 'static', netns: pod.netnsPath, conf: conf(c) })).code).toBe(0);
    });

    it('ipMasq adds the pod to the masquerade set, and DEL without a namespace removes it', async () => {
      const pod = await createTestNetns('pod');
      const r = await call(c, { command: 'ADD', containerId: 'masq', netns: pod.netnsPath, conf: conf(c, { ipMasq: true }) });
      expect(r.code, r.stdout).toBe(0);
      const ip = resultAddress(r);
      expect(await masqueradedPods(c.host)).toContain(ip);
      // Pod to pod keeps its source address (no NAT between pods): the rule spares the whole
      // cluster network, not only this host's subnet.
      const table = (await run('nft', ['list', 'table', 'ip', 'twill-cni'], { netns: c.host.name })).stdout;
      expect(table).toMatch(/set cluster-networks \{[^}]*elements = \{ 10\.244\.0\.0\/16 \}/s);
      expect(table).toMatch(/ip saddr @masq-pods ip daddr != @pod-subnets ip daddr != @cluster-networks .*masquerade/);
      const check = await call(c, { command: 'CHECK', containerId: 'masq', netns: pod.netnsPath, conf: conf(c, { ipMasq: true, prevResult: r.json }) });
      expect(check.code, check.stdout).toBe(0);
      const path = pod.netnsPath;
      await pod.destroy();
      expect((await call(c, { command: 'DEL', containerId: 'masq', netns: path, conf: conf(c, { ipMasq: true }) })).code).toBe(0);
      expect(await masqueradedPods(c.host)).not.toContain(ip);
    });

    it('STATUS is 0 with a lease and 50 without; DEL still works without one', async () => {
      expect((await call(c, { command: 'STATUS', conf: conf(c) })).code).toBe(0);
      const missing = conf(c, { subnetFile: '/nonexistent/subnet.env' });
      const status = await call(c, { command: 'STATUS', conf: missing });
      expect(status.json?.code).toBe(50);
      expect((await call(c, { command: 'STATUS', conf: conf(c, {}, '1.0.0') })).json?.code).toBe(1);
      expect((await call(c, { command: 'DEL', containerId: 'x', conf: missing })).code).toBe(0);
    });

    it('GC frees what is not listed and keeps what is', async () => {
      const pods = await Promise.all([0, 1].map(() => createTestNetns('pod')));
      const ips: string[] = [];
      for (const [i, pod] of pods.entries()) {
        const r = await call(c, { command: 'ADD', containerId: `gc${i}`, netns: pod.netnsPath, conf: conf(c) });
        expect(r.code).toBe(0);
        ips.push(resultAddress(r));
      }
      const gc = await call(c, { command: 'GC', conf: conf(c, { 'cni.dev/valid-attachments': [{ containerID: 'gc0', ifname: 'eth0' }], 'cni.dev/attachments': [{ containerID: 'gc0', ifname: 'eth0' }] }) });
      expect(gc.code, gc.stdout).toBe(0);
      expect(addressFiles(c.dataDir)).toContain(ips[0]);
      expect(addressFiles(c.dataDir)).not.toContain(ips[1]);
      expect(existsSync(join(c.dataDir, 'twill-test', 'last_reserved_ip.0'))).toBe(true);
      expect((await call(c, { command: 'GC', conf: conf(c, { 'cni.dev/valid-attachments': [] }, '1.0.0') })).json?.code).toBe(1);
      for (const [i, pod] of pods.entries()) await call(c, { command: 'DEL', containerId: `gc${i}`, netns: pod.netnsPath, conf: conf(c) });
    });

    it('bad input: the right code, the variable named, nothing created', async () => {
      const pod = await createTestNetns('pod');
      const before = addressFiles(c.dataDir).length;
      const cases: [Omit<CniCallOptions, 'socket'>, number, RegExp][] = [
        [{ command: 'ADD', containerId: 'x', netns: pod.netnsPath, conf: conf(c), env: { CNI_COMMAND: undefined } }, 4, /CNI_COMMAND/],
        [{ command: 'FROB', containerId: 'x', netns: pod.netnsPath, conf: conf(c) }, 4, /CNI_COMMAND/],
        [{ command: 'ADD', netns: pod.netnsPath, ifname: 'eth0', conf: conf(c) }, 4, /CNI_CONTAINERID/],
        [{ command: 'ADD', containerId: '../../etc', netns: pod.netnsPath, conf: conf(c) }, 4, /CNI_CONTAINERID/],
        [{ command: 'ADD', containerId: 'a/b', netns: pod.netnsPath, conf: conf(c) }, 4, /CNI_CONTAINERID/],
        [{ command: 'ADD', containerId: 'x', conf: conf(c) }, 4, /CNI_NETNS/],
        [{ command: 'ADD', containerId: 'x', netns: '/nonexistent/netns', conf: conf(c) }, 4, /CNI_NETNS/],
        [{ command: 'ADD', containerId: 'x', netns: pod.netnsPath, ifname: 'a-very-long-interface-name', conf: conf(c) }, 4, /CNI_IFNAME/],
        [{ command: 'ADD', containerId: 'x', netns: pod.netnsPath, conf: '{"cniVersion": "1.0.0", "name": ' }, 6, /JSON/],
        [{ command: 'ADD', containerId: 'x', netns: pod.netnsPath, conf: conf(c, {}, '9.9.9') }, 1, /9\.9\.9/],
        [{ command: 'ADD', containerId: 'x', netns: pod.netnsPath, conf: conf(c, { mtu: 'big' }) }, 7, /mtu/],
        [{ command: 'ADD', containerId: 'x', netns: pod.netnsPath, conf: conf(c, { ipam: { type: 'host-local' } }) }, 2, /ipam/],
        [{ command: 'ADD', containerId: 'x', netns: pod.netnsPath, conf: conf(c, { subnetFile: '/nonexistent/subnet.env' }) }, 11, /subnet\.env/],
      ];
      for (const [opts, code, msg] of cases) {
        const r = await call(c, opts);
        expect(r.code, JSON.stringify(opts)).not.toBe(0);
        expect(r.json?.code, `${JSON.stringify(opts.env ?? opts.command)} ${r.stdout}`).toBe(code);
        expect(r.json?.msg).toMatch(msg);
        expect(typeof r.json?.cniVersion).toBe('string');
      }
      expect(addressFiles(c.dataDir)).toHaveLength(before);
      expect((await pod.links()).map((l) => l.ifname)).toEqual(['lo']);
    });

    it('reconciles addresses of pods whose namespace is gone when the agent starts', async () => {
      if (mode !== 'agent') return;
      const pod = await createTestNetns('pod');
      const r = await call(c, { command: 'ADD', containerId: 'reboot', netns: pod.netnsPath, conf: conf(c) });
      const ip = resultAddress(r);
      await pod.destroy();
      rmSync(join(c.dataDir, 'none'), { force: true });
      const restarted = await startCniServer(c.host, { dataDir: c.dataDir, socket: join(tempDir('cni-sock2'), 'cni.sock') });
      expect(addressFiles(c.dataDir)).not.toContain(ip);
      await restarted.daemon.stop();
    });
  });
}
