import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RemoteLease, SyncReport } from '../../src/backends/backend.js';
import { checkRemoteLease, screenRemoteLeases } from '../../src/backends/lease-checks.js';
import { onLinkMatcher } from '../../src/backends/on-link.js';
import { booleanOption, integerOption } from '../../src/backends/options.js';
import { Reconciler } from '../../src/backends/reconciler.js';
import { runRepairLoop } from '../../src/backends/repair-loop.js';
import { WriteQueue } from '../../src/backends/write-queue.js';
import type { LinkEvent, LinkMonitor } from '../../src/netlink/index.js';

// The parts every backend shares (src/backends/*.ts): what host-gw, vxlan and any later backend
// rely on without a copy of their own.

const log = pino({ level: 'silent' });
const lease = (subnet: string, publicIp: string, backendType = 'host-gw'): RemoteLease => ({ subnet, publicIp, backendType, backendData: null });

/** A link notification stream the test drives. */
function fakeMonitor(): LinkMonitor & { closed: boolean } {
  const m = Object.assign(new EventEmitter(), { closed: false, close() { m.closed = true; } });
  return m as unknown as LinkMonitor & { closed: boolean };
}
const linkEvent = (type: 'new' | 'deleted', index: number, name: string, up: boolean): LinkEvent =>
  ({ type, link: { index, name, up } } as unknown as LinkEvent);

describe('WriteQueue', () => {
  it('runs steps one at a time in order, and a failed step does not block the next', async () => {
    const q = new WriteQueue();
    const order: string[] = [];
    let release!: () => void;
    const first = q.run(async () => { order.push('1 start'); await new Promise<void>((r) => { release = r; }); order.push('1 end'); });
    const second = q.run(() => { order.push('2'); return Promise.reject(new Error('kernel said no')); });
    const third = q.run(() => { order.push('3'); return Promise.resolve(3); });
    await Promise.resolve();
    expect(order).toEqual(['1 start']);
    release();
    await first;
    await expect(second).rejects.toThrow('kernel said no');
    expect(await third).toBe(3);
    await q.drained();
    expect(order).toEqual(['1 start', '1 end', '2', '3']);
  });
});

describe('Reconciler', () => {
  it('removes nothing before the first desired set, then re-applies the newest set on resync', async () => {
    const applied: string[][] = [];
    const before: string[] = [];
    const r = new Reconciler({
      apply: (desired) => { applied.push(desired.map((l) => l.subnet)); return Promise.resolve({ changes: 1, skipped: [] }); },
      beforeFirstSet: (why) => { before.push(why); return Promise.resolve(); },
    }, log, 'test');
    await r.resync('periodic');
    expect(applied).toEqual([]); // an empty set would delete what a restarted agent found in place
    expect(before).toEqual(['periodic']);
    expect(r.hasDesiredSet).toBe(false);
    await r.sync([lease('10.244.1.0/24', '198.18.0.2')]);
    await r.sync([lease('10.244.2.0/24', '198.18.0.3')]);
    await r.resync('device deleted');
    expect(applied).toEqual([['10.244.1.0/24'], ['10.244.2.0/24'], ['10.244.2.0/24']]);
    expect(before).toEqual(['periodic']);
  });

  it('keeps a set whose sync failed, so the next resync applies it', async () => {
    let fail = true;
    const applied: number[] = [];
    const r = new Reconciler({
      apply: (desired): Promise<SyncReport> => {
        if (fail) return Promise.reject(new Error('EBUSY'));
        applied.push(desired.length);
        return Promise.resolve({ changes: desired.length, skipped: [] });
      },
    }, log, 'test');
    await expect(r.sync([lease('10.244.1.0/24', '198.18.0.2')])).rejects.toThrow('EBUSY');
    fail = false;
    await r.resync('periodic');
    expect(applied).toEqual([1]);
  });
});

describe('runRepairLoop', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it('repairs every interval, on the backend\'s own link event and when the external interface comes back', async () => {
    const monitor = fakeMonitor();
    const whys: string[] = [];
    const ac = new AbortController();
    const loop = runRepairLoop(ac.signal, {
      watchLinks: () => monitor, extIndex: 2, intervalMs: 10_000, log,
      repair: (why) => { whys.push(why); return Promise.resolve(); },
      linkNeedsRepair: (ev) => (ev.link.name === 'twill.1' && ev.type === 'deleted' ? 'twill.1 deleted' : undefined),
    });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(whys).toEqual(['periodic']);
    monitor.emit('link', linkEvent('deleted', 7, 'twill.1', false));
    monitor.emit('link', linkEvent('new', 2, 'eth0', false)); // down: nothing to repair yet
    await vi.advanceTimersByTimeAsync(0);
    monitor.emit('link', linkEvent('new', 2, 'eth0', true));
    monitor.emit('link', linkEvent('new', 9, 'veth9', true)); // not ours
    await vi.advanceTimersByTimeAsync(0);
    expect(whys).toEqual(['periodic', 'twill.1 deleted', 'eth0 up again']);
    ac.abort();
    await loop;
    expect(monitor.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(whys).toHaveLength(3);
  });

  it('coalesces requests during a repair into one more, and survives a failed repair', async () => {
    const monitor = fakeMonitor();
    const whys: string[] = [];
    let release!: () => void;
    const ac = new AbortController();
    const loop = runRepairLoop(ac.signal, {
      watchLinks: () => monitor, extIndex: 2, intervalMs: 1000, log,
      repair: async (why) => {
        whys.push(why);
        if (whys.length === 1) await new Promise<void>((r) => { release = r; });
        if (whys.length === 2) throw new Error('EBUSY');
      },
    });
    await vi.advanceTimersByTimeAsync(1000);
    monitor.emit('error', new Error('ENOBUFS'));
    monitor.emit('error', new Error('ENOBUFS'));
    await vi.advanceTimersByTimeAsync(1000); // a tick while the first repair still runs
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(whys).toEqual(['periodic', 'link notifications lost (ENOBUFS)']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(whys).toEqual(['periodic', 'link notifications lost (ENOBUFS)', 'periodic']);
    ac.abort();
    await loop;
  });

  it('keeps repairing on the interval when link notifications cannot be opened', async () => {
    const whys: string[] = [];
    const ac = new AbortController();
    const loop = runRepairLoop(ac.signal, {
      watchLinks: () => { throw new Error('EPERM'); }, extIndex: 2, intervalMs: 500, log,
      repair: (why) => { whys.push(why); return Promise.resolve(); },
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(whys).toEqual(['periodic', 'periodic']);
    ac.abort();
    await loop;
  });
});

describe('lease checks and on-link matching', () => {
  const ctx = { type: 'host-gw', clusterNetwork: '10.244.0.0/16', localPublicIp: '198.18.0.1' };

  it('accepts a routable lease and names why another is not', () => {
    expect(checkRemoteLease(lease('10.244.9.0/24', '198.18.0.9'), ctx)).toMatchObject({ ok: true, dst: '10.244.9.0/24', publicIp: '198.18.0.9' });
    const reasons = [
      lease('10.244.9.0/24', '198.18.0.9', 'vxlan'),
      lease('10.99.9.0/24', '198.18.0.9'),
      lease('10.244.9.0/24', '198.18.0.1'),
      lease('10.244.9.0/24', 'fd00::9'),
      lease('10.244.9.0/24', 'not-an-ip'),
    ].map((l) => { const c = checkRemoteLease(l, ctx); return c.ok ? 'ok' : c.reason; });
    expect(reasons[0]).toBe('BackendType is "vxlan", not "host-gw"');
    expect(reasons[1]).toBe('the subnet is outside the cluster network 10.244.0.0/16');
    expect(reasons[2]).toBe('PublicIP 198.18.0.1 is this node\'s own');
    expect(reasons[3]).toBe('PublicIP fd00::9 is not IPv4 (the underlay is IPv4)');
    expect(reasons[4]).toMatch(/PublicIP/);
  });

  it('screens a lease set in subnet order: the first usable lease for a subnet wins; one the backend refines away claims nothing', () => {
    const { usable, skipped } = screenRemoteLeases([
      lease('10.244.9.0/24', '198.18.0.19'),
      lease('10.244.3.0/24', '198.18.0.66'),
      lease('10.244.9.0/24', '198.18.0.9'),
      lease('10.244.9.0/24', '198.18.0.29'),
      lease('10.99.0.0/24', '198.18.0.5'),
    ], ctx, (_l, c) => (c.publicIp === '198.18.0.66' ? 'refused by the backend' : c.publicIp.length));
    expect(usable.map((u) => `${u.checked.dst} ${u.checked.publicIp} ${String(u.refined)}`)).toEqual(['10.244.9.0/24 198.18.0.19 11']);
    expect(skipped).toEqual([
      { subnet: '10.99.0.0/24', reason: 'the subnet is outside the cluster network 10.244.0.0/16' },
      { subnet: '10.244.3.0/24', reason: 'refused by the backend' },
      { subnet: '10.244.9.0/24', reason: 'another lease for the same subnet came first' },
      { subnet: '10.244.9.0/24', reason: 'another lease for the same subnet came first' },
    ]);
  });

  it('finds an address on-link only inside a connected IPv4 subnet of the interface', () => {
    const onLink = onLinkMatcher(['198.18.0.1/24', 'fe80::1/64', '10.9.9.9/32']);
    expect(onLink('198.18.0.200')).toBe(true);
    expect(onLink('198.18.1.2')).toBe(false);
    expect(onLink('10.9.9.9')).toBe(false); // a /32 makes nothing on-link
  });
});

describe('backend option parsers', () => {
  it('read integers and booleans case-insensitively, with flannel\'s zero values, and name the option in errors', () => {
    expect(integerOption('vxlan', { vni: 7 }, 'VNI', 1, 100)).toBe(7);
    expect(integerOption('vxlan', { Port: 0 }, 'Port', 1, 65535, 'the default')).toBeUndefined();
    expect(integerOption('vxlan', {}, 'MTU', 68, 65535)).toBeUndefined();
    expect(() => integerOption('ipip', { MTU: 40 }, 'MTU', 68, 65535)).toThrow(/ipip backend option MTU.*40.*68\.\.65535/);
    expect(booleanOption('vxlan', { directrouting: true }, 'DirectRouting')).toBe(true);
    expect(booleanOption('vxlan', { DirectRouting: null }, 'DirectRouting')).toBe(false);
    expect(() => booleanOption('vxlan', { GBP: 'yes' }, 'GBP')).toThrow(/vxlan backend option GBP.*must be true or false/);
  });
});
