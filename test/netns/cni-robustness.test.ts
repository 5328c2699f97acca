import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PodIpam } from '../../src/ipam/pod-ipam.js';
import { tempDir } from '../helpers/cleanup.js';
import {
  addressFiles, bedCall as call, bedConf as conf, CNI_MODES, CNI_SHIM, createCniBed, masqueradedPods, resultAddress, startCniServer, vethNames, type CniBed,
} from '../helpers/cni.js';
import { createTestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

/*
 * The CNI plugin under hostile or unlucky input (issue 13, items 6 to 11), through both paths:
 * the agent's socket and the shim's in-process fallback. Each case names its item.
 */

const GATEWAY = '10.244.9.1';
const NETWORK = 'twill-test';

/**
 * A fake `nft` first on the PATH: the transaction that adds a pod's masquerade element hangs (as
 * nft does when the netfilter lock is stuck); every other invocation is the real nft.
 */
function nftThatHangsOnAdd(): string {
  const bin = join(tempDir('cni-fakebin'), 'bin');
  mkdirSync(bin);
  const real = execFileSync('sh', ['-c', 'command -v nft'], { encoding: 'utf8' }).trim();
  writeFileSync(join(bin, 'nft'), `#!/bin/sh
script="$(cat)"
case "$script" in *'masquerade comment'*) exec sleep 120 ;; esac
printf '%s\\n' "$script" | exec ${real} "$@"
`);
  chmodSync(join(bin, 'nft'), 0o755);
  return bin;
}

/** The addresses whose files name `containerId` as their holder. */
function heldBy(dataDir: string, containerId: string): string[] {
  return addressFiles(dataDir).filter((ip) => readFileSync(join(dataDir, NETWORK, ip), 'utf8').startsWith(`${containerId}\r\n`));
}

for (const mode of CNI_MODES) {
  describe.skipIf(!isRoot || !existsSync(CNI_SHIM))(`twill CNI plugin under hostile input (${mode})`, () => {
    useCleanup();
    let c: CniBed;
    beforeAll(async () => {
      c = await createCniBed(mode, GATEWAY);
    });

    /** What a refused ADD must leave behind: nothing. */
    async function expectUnchanged(before: { addresses: string[]; veths: string[] }, containerId: string): Promise<void> {
      expect(addressFiles(c.dataDir)).toEqual(before.addresses);
      expect(existsSync(join(c.dataDir, NETWORK, 'attachments', containerId))).toBe(false);
      expect(await vethNames(c.host)).toEqual(before.veths);
    }

    async function snapshot(): Promise<{ addresses: string[]; veths: string[] }> {
      return { addresses: addressFiles(c.dataDir), veths: await vethNames(c.host) };
    }

    it('item 6: an ADD whose CNI_NETNS is no network namespace fails before allocating; DEL for it succeeds', async () => {
      const dir = tempDir('cni-notns');
      const file = join(dir, 'regular-file');
      writeFileSync(file, '');
      const cases: [string, RegExp][] = [
        [file, /is not a network namespace \(a file outside nsfs\)/],
        [dir, /is not a network namespace \(a directory\)/],
        ['/proc/self/ns/mnt', /is not a network namespace$/], // a namespace file, of another kind
      ];
      for (const [netns, msg] of cases) {
        const before = await snapshot();
        const add = await call(c, { command: 'ADD', containerId: 'notns', netns, conf: conf(c) });
        expect(add.code, add.stdout).toBe(1);
        expect(add.json).toMatchObject({ code: 4, msg: expect.stringMatching(new RegExp(`^CNI_NETNS "${netns}" ${msg.source}`)) as unknown });
        await expectUnchanged(before, 'notns');
        const del = await call(c, { command: 'DEL', containerId: 'notns', netns, conf: conf(c) });
        expect(del.code, `${netns}: ${del.stdout}${del.stderr}`).toBe(0);
      }
    });

    it('item 7: a FIFO as CNI_NETNS is refused at once, and the pods after it are served', async () => {
      const fifo = join(tempDir('cni-fifo'), 'netns');
      execFileSync('mkfifo', [fifo]);
      const before = await snapshot();
      const started = Date.now();
      const add = await call(c, { command: 'ADD', containerId: 'fifo', netns: fifo, conf: conf(c), timeoutMs: 15_000 });
      expect(add.code, 'killed after 15 s: opening the FIFO hung').not.toBeNull();
      expect(add.json).toMatchObject({ code: 4, msg: expect.stringMatching(/is not a network namespace \(a FIFO\)/) as unknown });
      expect(Date.now() - started).toBeLessThan(10_000);
      await expectUnchanged(before, 'fifo');
      expect((await call(c, { command: 'DEL', containerId: 'fifo', netns: fifo, conf: conf(c), timeoutMs: 15_000 })).code).toBe(0);
      for (const i of [1, 2, 3]) {
        const pod = await createTestNetns('pod');
        const next = await call(c, { command: 'ADD', containerId: `after-fifo${i}`, netns: pod.netnsPath, conf: conf(c), timeoutMs: 15_000 });
        expect(next.code, next.stdout).toBe(0);
        expect((await call(c, { command: 'DEL', containerId: `after-fifo${i}`, netns: pod.netnsPath, conf: conf(c) })).code).toBe(0);
      }
    });

    it('item 7: an ADD that runs past its deadline is rolled back and answered with code 11', { timeout: 60_000 }, async () => {
      const path = `${nftThatHangsOnAdd()}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`;
      // The agent's deadline is its --cni-timeout; the fallback's, TWILL_CNI_TIMEOUT.
      const bed = mode === 'agent' ? { ...c, socket: (await startCniServer(c.host, { dataDir: c.dataDir, timeoutMs: 2000, env: { PATH: path } })).socket } : c;
      const pod = await createTestNetns('pod');
      const before = await snapshot();
      const started = Date.now();
      const add = await call(bed, {
        command: 'ADD', containerId: 'late', netns: pod.netnsPath, conf: conf(c, { ipMasq: true }), env: { PATH: path, TWILL_CNI_TIMEOUT: '2' }, timeoutMs: 25_000,
      });
      // The deadline, the ADD's undo window, the rollback DEL: well before nft's own 30 s.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(add.json).toMatchObject({ code: 11, msg: expect.stringMatching(/ADD did not finish within 2 s .*; what it had done is undone$/) as unknown });
      // It had made the veth pair and configured the pod: all gone again.
      expect(await pod.link('eth0')).toBeUndefined();
      await expectUnchanged(before, 'late');
    });

    it('item 8: a repeated ADD returns the same result; a half-done one is rolled back and redone', async () => {
      const pod = await createTestNetns('pod');
      // Half done: an ADD claimed the attachment and an address, and then its process died.
      new PodIpam({ dataDir: c.dataDir, network: NETWORK, subnet: '10.244.9.0/24' }).allocate({ containerId: 'half', ifname: 'eth0', netns: pod.netnsPath });
      const first = await call(c, { command: 'ADD', containerId: 'half', netns: pod.netnsPath, conf: conf(c) });
      expect(first.code, first.stdout).toBe(0);
      expect(heldBy(c.dataDir, 'half')).toEqual([resultAddress(first)]);
      expect((await pod.routes()).find((r) => r.dst === 'default')?.gateway).toBe(GATEWAY);

      // Complete: the same answer, nothing added.
      const veths = await vethNames(c.host);
      const again = await call(c, { command: 'ADD', containerId: 'half', netns: pod.netnsPath, conf: conf(c) });
      expect(again.code, again.stdout).toBe(0);
      expect(again.json).toEqual(first.json);
      expect(await vethNames(c.host)).toEqual(veths);

      // Half done at the routes: rolled back (the old pair is gone) and done again.
      await pod.run('ip', ['route', 'del', 'default']);
      const redone = await call(c, { command: 'ADD', containerId: 'half', netns: pod.netnsPath, conf: conf(c) });
      expect(redone.code, redone.stdout).toBe(0);
      expect(heldBy(c.dataDir, 'half')).toEqual([resultAddress(redone)]);
      expect((await pod.routes()).find((r) => r.dst === 'default')?.gateway).toBe(GATEWAY);
      expect((await vethNames(c.host)).filter((v) => !veths.includes(v))).toHaveLength(1);
      expect(await vethNames(c.host)).not.toContain((first.json!.interfaces as { name: string }[])[1]!.name);

      // The same container and interface in another namespace is a real duplicate.
      const other = await createTestNetns('pod');
      const elsewhere = await call(c, { command: 'ADD', containerId: 'half', netns: other.netnsPath, conf: conf(c) });
      expect(elsewhere.json).toMatchObject({ code: 104, msg: expect.stringMatching(/is attached in .* already/) as unknown });
      expect((await call(c, { command: 'DEL', containerId: 'half', netns: pod.netnsPath, conf: conf(c) })).code).toBe(0);
      expect(heldBy(c.dataDir, 'half')).toEqual([]);
    });

    it('item 9: the plugin\'s own namespace is refused, and DEL leaves interfaces twill did not make', async () => {
      // A veth of the host's own, as its uplink could be.
      await c.host.run('ip', ['link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'uplink1']);
      const before = await snapshot();
      const hostLinks = (await c.host.links()).map((l) => l.ifname);
      const routes = async (): Promise<string[]> => (await c.host.routes()).map((r) => `${r.dst} ${r.gateway ?? '-'} ${r.dev}`);
      const hostRoutes = await routes();
      const add = await call(c, { command: 'ADD', containerId: 'hostns', netns: c.host.netnsPath, conf: conf(c) });
      expect(add.json).toMatchObject({ code: 4, msg: expect.stringMatching(/is the plugin's own \(the host's\) network namespace/) as unknown });
      await expectUnchanged(before, 'hostns');
      expect((await c.host.links()).map((l) => l.ifname)).toEqual(hostLinks);
      expect(await routes()).toEqual(hostRoutes);
      // DEL there of the host's own interface: refused, and the interface stays.
      expect((await call(c, { command: 'DEL', containerId: 'hostns', netns: c.host.netnsPath, ifname: 'uplink0', conf: conf(c) })).code).toBe(0);
      expect(await c.host.link('uplink0')).toBeDefined();

      // A veth in a pod that is not twill's (its peer is no port of cni0) stays too.
      const pod = await createTestNetns('pod');
      await pod.run('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other']);
      expect((await call(c, { command: 'DEL', containerId: 'foreign', netns: pod.netnsPath, conf: conf(c) })).code).toBe(0);
      expect((await pod.link('eth0'))?.linkinfo?.info_kind).toBe('veth');
    });

    it('item 10: pod routes are added, never replaced: a namespace with a default route keeps it', async () => {
      const pod = await createTestNetns('pod');
      await pod.run('ip', ['link', 'add', 'net0', 'type', 'veth', 'peer', 'name', 'net0peer']);
      await pod.run('ip', ['link', 'set', 'net0', 'up']);
      await pod.run('ip', ['link', 'set', 'net0peer', 'up']);
      await pod.run('ip', ['addr', 'add', '198.18.77.2/24', 'dev', 'net0']);
      await pod.run('ip', ['route', 'add', 'default', 'via', '198.18.77.1', 'dev', 'net0', 'metric', '100']);
      const defaults = async (): Promise<unknown[]> => (await pod.routes()).filter((r) => r.dst === 'default').map((r) => ({ gateway: r.gateway, dev: r.dev }));
      const before = await snapshot();
      const add = await call(c, { command: 'ADD', containerId: 'second-net', netns: pod.netnsPath, conf: conf(c) });
      expect(add.json).toMatchObject({ code: 107, msg: expect.stringMatching(/already has a default route \(via 198\.18\.77\.1 .*"isDefaultGateway": false/) as unknown });
      expect(await defaults()).toEqual([{ gateway: '198.18.77.1', dev: 'net0' }]);
      expect(await pod.link('eth0')).toBeUndefined();
      await expectUnchanged(before, 'second-net');
      // As the pod's second network: its routes join the pod's, the default route stays.
      const second = await call(c, { command: 'ADD', containerId: 'second-net', netns: pod.netnsPath, conf: conf(c, { isDefaultGateway: false }) });
      expect(second.code, second.stdout).toBe(0);
      expect(await defaults()).toEqual([{ gateway: '198.18.77.1', dev: 'net0' }]);
      expect((await pod.routes()).find((r) => r.dst === '10.244.0.0/16')).toMatchObject({ gateway: GATEWAY, dev: 'eth0' });
      expect((await call(c, { command: 'DEL', containerId: 'second-net', netns: pod.netnsPath, conf: conf(c) })).code).toBe(0);
    });

    it('item 11: GC with another dataDir keeps this store\'s masquerading; stray entries never fail DEL or GC', async () => {
      const pod = await createTestNetns('pod');
      const add = await call(c, { command: 'ADD', containerId: 'masq', netns: pod.netnsPath, conf: conf(c, { ipMasq: true }) });
      expect(add.code, add.stdout).toBe(0);
      const ip = resultAddress(add);
      expect(await masqueradedPods(c.host)).toContain(ip);
      const unknown = join(tempDir('cni-other'), 'ipam');
      const gc = await call(c, { command: 'GC', conf: conf({ ...c, dataDir: unknown }, { ipMasq: true, 'cni.dev/valid-attachments': [] }) });
      expect(gc.code, gc.stdout).toBe(0);
      expect(await masqueradedPods(c.host)).toContain(ip);

      // Strays: a directory named like an address, files where directories belong, bad names.
      mkdirSync(join(c.dataDir, NETWORK, '10.244.9.250'));
      writeFileSync(join(c.dataDir, NETWORK, 'attachments', 'not-a-dir'), '');
      mkdirSync(join(c.dataDir, NETWORK, 'attachments', 'bad name'));
      mkdirSync(join(c.dataDir, 'not a network'));
      const del = await call(c, { command: 'DEL', containerId: 'never-added', conf: conf(c) });
      expect(del.code, del.stdout).toBe(0);
      const own = await call(c, { command: 'GC', conf: conf(c, { ipMasq: true, 'cni.dev/valid-attachments': [{ containerID: 'masq', ifname: 'eth0' }] }) });
      expect(own.code, own.stdout).toBe(0);
      expect(await masqueradedPods(c.host)).toContain(ip);
      expect(existsSync(join(c.dataDir, NETWORK, '10.244.9.250'))).toBe(true);
      expect((await call(c, { command: 'DEL', containerId: 'masq', netns: pod.netnsPath, conf: conf(c, { ipMasq: true }) })).code).toBe(0);
      expect(await masqueradedPods(c.host)).not.toContain(ip);
    });
  });
}
