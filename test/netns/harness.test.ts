/**
 * Proves the namespace test harness (test/helpers): topology, addresses, reachability, pods,
 * and that every namespace goes away on destroy, on a thrown error and when the process is
 * interrupted or killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it, test } from 'vitest';
import { netnsPath } from '../../src/netlink/index.js';
import { createCluster, underlayAddresses, type Cluster } from '../helpers/cluster.js';
import {
  cleanup, CleanupError, CleanupRegistry, netnsExists, processAlive, sweepStale, tracked, withCleanup,
} from '../helpers/cleanup.js';
import { commandAvailable, exec, ipJson, run } from '../helpers/exec.js';
import { ifName, MAX_IFNAME_BYTES, NETNS_PREFIX, netnsName, ownerPidOf } from '../helpers/names.js';
import { connectNetns, createTestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** `ip netns list` as names (it prints "name (id: N)" for namespaces with an id). */
async function ipNetnsList(): Promise<string[]> {
  const out = await exec('ip', ['netns', 'list']);
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
}

/** Names of the links of the test process's own (root) namespace. */
async function rootLinks(): Promise<string[]> {
  return (await ipJson<{ ifname: string }[]>(undefined, ['link', 'show'])).map((l) => l.ifname).sort();
}

function expectGone(names: readonly string[], listed: readonly string[]): void {
  for (const name of names) {
    expect(listed, `${name} still in ip netns list`).not.toContain(name);
    expect(existsSync(netnsPath(name)), `${netnsPath(name)} still exists`).toBe(false);
  }
}

describe('names (no privileges needed)', () => {
  it('makes short unique interface names', () => {
    const names = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const n = ifName('p123');
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(MAX_IFNAME_BYTES);
      expect(n).toMatch(/^tw[0-9a-z]{4}p123$/);
      names.add(n);
    }
    expect(names.size).toBe(500);
    expect(Buffer.byteLength(ifName('123456789'))).toBe(15);
    expect(() => ifName('1234567890')).toThrow(/too long/);
  });

  it('makes recognisable namespace names carrying the owner pid', () => {
    const n = netnsName('h0', 'abcd');
    expect(n.startsWith(NETNS_PREFIX)).toBe(true);
    expect(n).toBe(`twt-${process.pid.toString(36)}.abcd-h0`);
    expect(ownerPidOf('twt-my-tag-abc123')).toBeUndefined(); // ad-hoc twt- names of other tests
    expect(ownerPidOf(n)).toBe(process.pid);
    expect(ownerPidOf('blue')).toBeUndefined();
  });

  it('checks the underlay CIDR', () => {
    expect(underlayAddresses('198.18.0.0/24', 3).ips).toEqual(['198.18.0.1', '198.18.0.2', '198.18.0.3']);
    expect(underlayAddresses('198.19.4.0/22', 1).ips).toEqual(['198.19.4.1']);
    expect(() => underlayAddresses('192.0.2.0/24', 1)).toThrow(/198\.18\.0\.0\/15/);
    expect(() => underlayAddresses('198.16.0.0/14', 1)).toThrow(/198\.18\.0\.0\/15/);
    expect(() => underlayAddresses('198.18.0.0/30', 3)).toThrow(/do not fit/);
  });
});

describe('cleanup registry (no privileges needed)', () => {
  it('unwinds LIFO, runs every entry despite failures, reports them together', async () => {
    const reg = new CleanupRegistry('t');
    const order: string[] = [];
    reg.defer('a', () => { order.push('a'); });
    reg.defer('b', async () => { order.push('b'); throw new Error('b broke'); });
    const c = reg.defer('c', () => { order.push('c'); });
    reg.defer('d', async () => { await new Promise((r) => setTimeout(r, 5)); order.push('d'); });
    c.cancel();
    const err = await reg.runAll().catch((e: unknown) => e);
    expect(order).toEqual(['d', 'b', 'a']);
    expect(err).toBeInstanceOf(CleanupError);
    expect((err as CleanupError).labels).toEqual(['b']);
    expect(reg.size).toBe(0);
  });

  it('unwinds only down to a mark, and runs an entry once', async () => {
    const reg = new CleanupRegistry('t');
    const ran: string[] = [];
    reg.defer('outer', () => { ran.push('outer'); });
    const mark = reg.size;
    const inner = reg.defer('inner', () => { ran.push('inner'); });
    await inner.run();
    await inner.run();
    reg.defer('inner2', () => { ran.push('inner2'); });
    await reg.runTo(mark);
    expect(ran).toEqual(['inner', 'inner2']);
    expect(reg.labels()).toEqual(['outer']);
  });

  it('gives up on a hanging teardown and goes on', async () => {
    const reg = new CleanupRegistry('t');
    const ran: string[] = [];
    reg.defer('first', () => { ran.push('first'); });
    reg.defer('hangs', () => new Promise<void>(() => undefined), { timeoutMs: 50 });
    await expect(reg.runAll()).rejects.toThrow(/hangs.*did not finish within 50 ms/s);
    expect(ran).toEqual(['first']);
  });
});

describe.skipIf(!isRoot)('namespace harness', () => {
  useCleanup();

  describe('a 3-host cluster', () => {
    let cluster: Cluster;
    let names: string[] = [];

    let rootLinksBefore: string[] = [];
    let rootForwardBefore = '';

    // Made in beforeAll, so it outlives the per-test unwinding of useCleanup.
    beforeAll(async () => {
      rootLinksBefore = await rootLinks();
      rootForwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
      cluster = await createCluster({ hosts: 3, mtu: 1400 });
      names = cluster.namespaces();
    });

    it('leaves the root namespace alone', async () => {
      expect(await rootLinks()).toEqual(rootLinksBefore);
      expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(rootForwardBefore);
    });

    it('builds hosts with the right address, MTU and sysctls', async () => {
      expect(names).toHaveLength(4);
      for (const name of names) expect(name.startsWith(`${NETNS_PREFIX}${process.pid.toString(36)}.${cluster.id}-`)).toBe(true);
      const listed = await ipNetnsList();
      for (const name of names) expect(listed).toContain(name);

      for (const [i, host] of cluster.hosts.entries()) {
        expect(host.underlayIp).toBe(`198.18.0.${i + 1}`);
        expect(host.underlayIfname).toBe('eth0');
        const [eth0] = await host.json<{ ifname: string; mtu: number; flags: string[]; addr_info: { family: string; local: string; prefixlen: number }[] }[]>(['addr', 'show', 'dev', 'eth0']);
        expect(eth0?.ifname).toBe('eth0');
        expect(eth0?.mtu).toBe(1400);
        expect(eth0?.flags).toContain('UP');
        const v4 = eth0?.addr_info.filter((a) => a.family === 'inet');
        expect(v4).toEqual([expect.objectContaining({ local: `198.18.0.${i + 1}`, prefixlen: 24 })]);
        const lo = await host.link('lo');
        expect(lo?.flags).toContain('UP');
        expect(host.readSysctl('net.ipv4.ip_forward')).toBe('1');
        expect((await host.exec('cat', ['/proc/sys/net/ipv4/ip_forward'])).trim()).toBe('1');
        // The host side of the underlay is a veth whose bridge end sits on br0 in the underlay ns.
        const port = await cluster.underlay.link(host.bridgePort);
        expect(port?.master).toBe('br0');
        expect(port?.mtu).toBe(1400);
      }
      const br = await cluster.underlay.link('br0');
      expect(br?.linkinfo?.info_kind).toBe('bridge');
      expect(br?.flags).toContain('UP');
    });

    it('connects the hosts over the underlay', async () => {
      const [h0, , h2] = cluster.hosts;
      const out = await h0!.exec('ping', ['-c1', '-W1', h2!.underlayIp]);
      expect(out).toMatch(/1 received/);
      expect(await h2!.ping(cluster.hosts[1]!.underlayIp)).toBe(true);
      // Nothing answers outside the cluster.
      expect(await h0!.ping('198.18.0.200')).toBe(false);
    });

    it('adds pods with a veth into their host', async () => {
      const h1 = cluster.hosts[1]!;
      const pod = await cluster.addPod(h1, { ip: '10.244.1.2/24', gateway: '10.244.1.1', hostRoute: true });
      expect(pod.name).toContain(`.${cluster.id}-h1p`);
      const eth0 = await pod.link('eth0');
      expect(eth0?.flags).toContain('UP');
      expect(eth0?.mtu).toBe(1400);
      expect(eth0?.addr_info?.some((a) => a.local === '10.244.1.2' && a.prefixlen === 24)).toBe(true);
      const hostSide = await h1.link(pod.hostIfname);
      expect(hostSide?.linkinfo?.info_kind).toBe('veth');
      expect(hostSide?.flags).toContain('UP');
      expect(await pod.routes(['default'])).toEqual([expect.objectContaining({ gateway: '10.244.1.1', dev: 'eth0' })]);
      expect(await h1.routes(['10.244.1.2'])).toEqual([expect.objectContaining({ dev: pod.hostIfname, scope: 'link' })]);
      // The host reaches the pod over the veth (the pod answers via its onlink default route).
      await h1.netlink((nl) => nl.addAddress(pod.hostIfname, '10.244.1.1/32'));
      expect(await h1.ping('10.244.1.2')).toBe(true);
      expect(cluster.pods).toContain(pod);

      // A pod on a bridge in its host.
      const h2 = cluster.hosts[2]!;
      await h2.netlink(async (nl) => {
        await nl.createBridge({ name: 'cni0' });
        await nl.addAddress('cni0', '10.244.2.1/24');
        await nl.setUp('cni0');
      });
      const bpod = await cluster.addPod(2, { ip: '10.244.2.5/24', gateway: '10.244.2.1', bridge: 'cni0' });
      expect((await h2.link(bpod.hostIfname))?.master).toBe('cni0');
      expect(await bpod.ping('10.244.2.1', { timeoutSec: 2 })).toBe(true);

      // A pod destroyed on its own leaves the cluster.
      await bpod.destroy();
      expect(bpod.exists).toBe(false);
      expect(cluster.pods).not.toContain(bpod);
      expect(await h2.link(bpod.hostIfname)).toBeUndefined();
      names = [...names, pod.name, bpod.name];
    });

    it('destroys everything, idempotently, and untracks it', async () => {
      const daemon = await cluster.hosts[0]!.spawn('sleep', ['600']);
      // `ip netns exec` enters the namespace a moment after the spawn returns: wait for it.
      await waitFor(() => cluster.hosts[0]!.pids().includes(daemon.pid), { timeoutMs: 5000, what: 'the daemon inside host 0' });
      await Promise.all([cluster.destroy(), cluster.destroy()]);
      await cluster.destroy();
      expect(cluster.namespaces()).toEqual([]);
      expectGone(names, await ipNetnsList());
      expect(daemon.running).toBe(false);
      for (const name of names) expect(tracked().netns).not.toContain(name);
    });
  });

  describe('cleanup on failure', () => {
    const failed: string[] = [];

    it('withCleanup destroys what the throwing body made', async () => {
      let made: string[] = [];
      const build = async (reg: CleanupRegistry): Promise<never> => {
        const c = await createCluster({ hosts: 2, underlayCidr: '198.19.7.0/24', registry: reg });
        made = c.namespaces();
        await c.addPod(0, { ip: '10.244.0.2/24' });
        made = c.namespaces();
        throw new Error('boom inside the test body');
      };
      await expect(withCleanup(build)).rejects.toThrow('boom inside the test body');
      expect(made).toHaveLength(4);
      expectGone(made, await ipNetnsList());
    });

    it('a failed createCluster leaves nothing behind', async () => {
      // Other test files may create namespaces in parallel: look at this process's only.
      const mine = async (): Promise<string[]> => (await ipNetnsList()).filter((n) => ownerPidOf(n) === process.pid);
      const before = await mine();
      // 16 bytes: validateIfname refuses the host interface name after the underlay and host
      // namespaces exist.
      await expect(createCluster({ hosts: 2, hostIfname: 'a-very-long-name' })).rejects.toThrow(/interface name/);
      expect(await mine()).toEqual(before);
    });

    // This test fails on purpose (test.fails): its namespaces must be gone in the next test,
    // removed by useCleanup's afterEach.
    test.fails('a test that throws mid-way (expected to fail)', async () => {
      const c = await createCluster({ hosts: 1 });
      failed.push(...c.namespaces());
      await c.hosts[0]!.spawn('sleep', ['600']);
      throw new Error('the test body fails');
    });

    it('...still had its namespaces and processes cleaned up by afterEach', async () => {
      expect(failed).toHaveLength(2);
      expectGone(failed, await ipNetnsList());
    });

    const timedOut: string[] = [];
    // Times out on purpose: vitest runs afterEach while the body is still waiting.
    test.fails('a test that times out (expected to fail)', async () => {
      const c = await createCluster({ hosts: 1 });
      timedOut.push(...c.namespaces());
      await sleep(5000);
    }, 2000);

    it('...still had its namespaces cleaned up by afterEach', async () => {
      expect(timedOut).toHaveLength(2);
      expectGone(timedOut, await ipNetnsList());
    });
  });

  describe('cleanup when the process is interrupted or killed', () => {
    // The fixture is TypeScript: run it with vite-node (a vitest dependency).
    const viteNode = fileURLToPath(new URL('../../node_modules/.bin/vite-node', import.meta.url));
    const fixture = fileURLToPath(new URL('../helpers/fixtures/orphan.ts', import.meta.url));

    interface OrphanInfo {
      /** The fixture cluster's namespaces. */
      readonly namespaces: string[];
      /** A daemon (own process group) in host 0. */
      readonly sleeper: number;
      /** An untracked process in host 1. */
      readonly ns: number[];
    }

    async function startOrphan(): Promise<{ child: ChildProcess; info: OrphanInfo }> {
      const child = spawn(viteNode, [fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise((r) => child.once('exit', r));
      // Safety net for this test itself: whatever happens, the fixture and its leftovers go.
      cleanup.defer('orphan fixture', async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
        sweepStale();
      });
      let out = '';
      let err = '';
      child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
      const info = await new Promise<OrphanInfo>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fixture did not report within 20 s; stderr:\n${err}`)), 20_000);
        child.stdout!.on('data', (b: Buffer) => {
          out += b.toString();
          const line = out.split('\n').find((l) => l.startsWith('READY '));
          if (line) {
            clearTimeout(timer);
            resolve(JSON.parse(line.slice(6)) as OrphanInfo);
          }
        });
        child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`fixture exited (${code}) early; stderr:\n${err}`)); });
      });
      return { child, info };
    }

    it.skipIf(!commandAvailable(viteNode))('SIGTERM: the exit handler deletes namespaces and kills their processes', async () => {
      const { child, info } = await startOrphan();
      expect(info.namespaces.length).toBe(3);
      for (const n of info.namespaces) expect(netnsExists(n)).toBe(true);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      for (const n of info.namespaces) expect(netnsExists(n), n).toBe(false);
      // SIGKILL was sent before the fixture exited; its delivery (and the reaping) is asynchronous.
      for (const pid of [info.sleeper, ...info.ns]) await waitFor(() => !processAlive(pid), { timeoutMs: 5000, what: `pid ${pid} gone` });
    }, 60_000);

    it.skipIf(!commandAvailable(viteNode))('SIGKILL: sweepStale removes what the dead process left', async () => {
      const { child, info } = await startOrphan();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      // SIGKILL runs no handler: everything is still there...
      for (const n of info.namespaces) expect(netnsExists(n), n).toBe(true);
      // ...until a later run sweeps it (useCleanup does this in beforeAll).
      // (Another test run on this machine may sweep them first: check the outcome, not who did it.)
      sweepStale();
      for (const n of info.namespaces) expect(netnsExists(n), n).toBe(false);
      // The fixture's processes outlived it (one detached in its own group): sweepStale found them
      // inside the namespaces and killed them.
      for (const pid of [info.sleeper, ...info.ns]) await waitFor(() => !processAlive(pid), { timeoutMs: 5000, what: `pid ${pid} gone` });
    }, 60_000);
  });

  it('connectNetns joins two standalone namespaces', async () => {
    const a = await createTestNetns('ra');
    const b = await createTestNetns('rb');
    await connectNetns(a, b, { a: { ifname: 'p0', cidr: '198.19.0.1/30' }, b: { ifname: 'p0', cidr: '198.19.0.2/30' }, mtu: 9000 });
    expect(await a.ping('198.19.0.2')).toBe(true);
    expect((await b.link('p0'))?.mtu).toBe(9000);
    const r = await run('ip', ['-n', a.name, 'link', 'show', 'p0']);
    expect(r.stdout).toMatch(/p0@if\d+/);
  });

  it('leaves no namespace of this process behind', async () => {
    const mine = (await ipNetnsList()).filter((n) => ownerPidOf(n) === process.pid);
    expect(mine).toEqual([]);
  });
});
