import { execFileSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  NetlinkError, createNetns, currentNetnsId, deleteNetns, enterNetns, listNetns, netnsPath, readSysctl, runInNetns, withNetns, writeSysctl,
} from '../../src/netlink/index.js';
import { canUseNetns, useScratchNamespaces } from './scratch.js';

describe.skipIf(!canUseNetns)('network namespaces', () => {
  const scratch = useScratchNamespaces();

  it('creates and deletes named namespaces that iproute2 sees, as `ip netns add/del` does', () => {
    const name = `twt-nsadd-${process.pid}`;
    try {
      const path = createNetns(name);
      expect(path).toBe(`/run/netns/${name}`);
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).toContain(name);
      expect(listNetns()).toContain(name);
      // It is a distinct namespace with only lo in it.
      const links = JSON.parse(execFileSync('ip', ['-n', name, '-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
      expect(links.map((l) => l.ifname)).toEqual(['lo']);
      expect(runInNetns(path, () => readlinkSync('/proc/thread-self/ns/net'))).not.toBe(currentNetnsId());
      expect(() => createNetns(name)).toThrow(expect.objectContaining({ code: 'EEXIST', target: name }) as Error);
    } finally {
      deleteNetns(name);
    }
    expect(existsSync(netnsPath(name))).toBe(false);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(name);
    expect(() => deleteNetns(name)).not.toThrow(); // already gone: fine
    expect(() => createNetns('a/b')).toThrow(/network namespace name "a\/b"/);
  });

  it('withNetns and runInNetns always return the thread to its own namespace', async () => {
    const s = await scratch('leak');
    const home = currentNetnsId();
    const inside = runInNetns(s.path, () => currentNetnsId());
    expect(inside).not.toBe(home);
    expect(currentNetnsId()).toBe(home);

    expect(() => runInNetns(s.path, () => { throw new Error('boom'); })).toThrow('boom');
    expect(currentNetnsId()).toBe(home);

    // An async callback would continue in the wrong namespace: refused, and still switched back.
    expect(() => runInNetns(s.path, (async () => 1) as unknown as () => number)).toThrow(/must be synchronous/);
    expect(currentNetnsId()).toBe(home);

    const seen = await withNetns(s.path, async (nl) => {
      await nl.createBridge({ name: 'inside0' });
      expect(currentNetnsId()).toBe(home); // awaiting never happens inside the namespace
      return (await nl.listLinks()).map((l) => l.name);
    });
    expect(seen).toContain('inside0');
    expect(currentNetnsId()).toBe(home);

    await expect(withNetns(s.path, async (nl) => {
      await nl.createBridge({ name: 'inside1' });
      throw new Error('fails after work');
    })).rejects.toThrow('fails after work');
    expect(currentNetnsId()).toBe(home);
    // The bridge went to the target namespace, not ours.
    expect(await s.nl.getLink('inside1')).toBeDefined();
  });

  it('reports a missing namespace path as a typed error naming it, and stays home', async () => {
    const home = currentNetnsId();
    const missing = '/run/netns/twt-missing-namespace';
    expect(() => runInNetns(missing, () => 1)).toThrow(NetlinkError);
    expect(() => runInNetns(missing, () => 1)).toThrow(expect.objectContaining({ code: 'ENOENT', target: missing }) as Error);
    await expect(withNetns(missing, async () => 1)).rejects.toThrow(missing);
    expect(currentNetnsId()).toBe(home);
  });

  it('reads and writes sysctls inside the namespace only', async () => {
    const s = await scratch('sysctl');
    const rootForwarding = readSysctl('net.ipv4.ip_forward');
    const target = rootForwarding === '1' ? '0' : '1';
    writeSysctl('net.ipv4.ip_forward', target, s.path);
    expect(readSysctl('net.ipv4.ip_forward', s.path)).toBe(target);
    expect(execFileSync('ip', ['netns', 'exec', s.name, 'cat', '/proc/sys/net/ipv4/ip_forward'], { encoding: 'utf8' }).trim()).toBe(target);
    expect(readSysctl('net.ipv4.ip_forward')).toBe(rootForwarding);
    s.nl.writeSysctl('net/ipv4/conf/lo/forwarding', 1);
    expect(s.nl.readSysctl('net/ipv4/conf/lo/forwarding')).toBe('1');
    expect(() => s.nl.writeSysctl('net.ipv4.no_such_knob', 1)).toThrow(expect.objectContaining({ code: 'ENOENT', op: 'sysctl.write' }) as Error);
    expect(() => readSysctl('kernel.hostname')).toThrow(/sysctl key "kernel.hostname"/);
  });
});

describe.skipIf(!canUseNetns)('link notifications', () => {
  const scratch = useScratchNamespaces();

  it('reports creation, change and deletion of links in the namespace only', async () => {
    const s = await scratch('mon');
    const other = await scratch('mon2');
    const monitor = s.nl.watchLinks();
    const seen: string[] = [];
    monitor.on('link', (e) => seen.push(`${e.type} ${e.link.name} ${e.link.up ? 'up' : 'down'}`));
    try {
      await other.nl.createBridge({ name: 'elsewhere' });
      await s.nl.createBridge({ name: 'mon0' });
      await s.nl.setUp('mon0');
      await s.nl.deleteLink('mon0');
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      monitor.close();
    }
    expect(seen).toContain('new mon0 down');
    expect(seen).toContain('new mon0 up');
    expect(seen[seen.length - 1]).toBe('deleted mon0 down');
    expect(seen.some((e) => e.includes('elsewhere'))).toBe(false);
  });
});

describe.skipIf(!canUseNetns)('enterNetns', () => {
  const scratch = useScratchNamespaces();

  it('keeps the thread in the namespace until told to leave, and then returns it home', async () => {
    const s = await scratch('enter');
    const home = currentNetnsId();
    const leave = enterNetns(s.path);
    let inside: string;
    try {
      inside = currentNetnsId();
      await new Promise((r) => setTimeout(r, 10)); // still there after awaiting
      expect(currentNetnsId()).toBe(inside);
    } finally {
      leave();
    }
    expect(inside).not.toBe(home);
    expect(currentNetnsId()).toBe(home);
    leave(); // twice is harmless
    expect(currentNetnsId()).toBe(home);
    expect(() => enterNetns('/run/netns/twt-no-such')).toThrow(expect.objectContaining({ code: 'ENOENT' }) as Error);
    expect(currentNetnsId()).toBe(home);
  });
});
