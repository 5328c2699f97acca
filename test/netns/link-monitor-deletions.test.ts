/**
 * The kernel notification stream drift repair relies on (issue 18): deletions of routes,
 * neighbours, FDB entries and nexthops, and an overrun of its buffer reported as an 'error'
 * (ENOBUFS) with the monitor still working and the process alive. (The netlink library aborts the
 * process if the kernel reports the overrun through recvmsg; link-monitor.ts says why it cannot.)
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { KernelDeletion } from '../../src/netlink/index.js';
import { exec } from '../helpers/exec.js';
import { waitFor } from '../helpers/wait.js';
import { canUseNetns, useScratchNamespaces } from './scratch.js';

const describeDeletion = (d: KernelDeletion): string => {
  switch (d.kind) {
    case 'route': return `route ${d.route.dst} proto ${d.route.protocol}`;
    case 'neighbour': return `neighbour ${d.neighbour.ip}`;
    case 'fdb': return `fdb ${d.entry.mac} dst ${d.entry.dst ?? '-'}`;
    case 'nexthop': return `nexthop ${d.id}`;
    case 'foreign-route': return `foreign ${d.route.dst} proto ${d.route.protocol}`;
  }
};

describe.skipIf(!canUseNetns)('kernel deletion notifications', () => {
  const scratch = useScratchNamespaces();

  it('reports deleted routes (both families), neighbours, FDB entries and nexthops, and nothing new', async () => {
    const s = await scratch('del');
    await s.ip('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    await s.ip('link', 'add', 'vx0', 'type', 'vxlan', 'id', '9', 'dstport', '8472', 'nolearning');
    for (const dev of ['d0', 'd1', 'vx0']) await s.ip('link', 'set', dev, 'up');
    await s.ip('addr', 'add', '198.18.0.1/24', 'dev', 'd0');
    await s.ip('addr', 'add', 'fd00:18::1/64', 'dev', 'd0', 'nodad');
    const monitor = s.nl.watchLinks({ deletions: true });
    const seen: string[] = [];
    monitor.on('deleted', (d) => seen.push(describeDeletion(d)));
    try {
      await s.ip('route', 'add', '10.244.2.0/24', 'via', '198.18.0.2', 'proto', '84');
      await s.ip('-6', 'route', 'add', 'fd10:0:0:2::/64', 'via', 'fd00:18::2', 'proto', '84');
      await s.ip('neigh', 'add', '10.244.2.0', 'lladdr', '0a:00:00:00:00:02', 'dev', 'vx0', 'nud', 'permanent');
      await s.ip('nexthop', 'add', 'id', '7', 'via', '198.18.0.3', 'dev', 'd0');
      await s.ip('route', 'del', '10.244.2.0/24');
      await s.ip('-6', 'route', 'del', 'fd10:0:0:2::/64');
      await s.ip('neigh', 'del', '10.244.2.0', 'dev', 'vx0');
      await exec('bridge', ['-n', s.name, 'fdb', 'append', '0a:00:00:00:00:03', 'dev', 'vx0', 'dst', '198.18.0.3']);
      await exec('bridge', ['-n', s.name, 'fdb', 'del', '0a:00:00:00:00:03', 'dev', 'vx0', 'dst', '198.18.0.3']);
      await s.ip('nexthop', 'del', 'id', '7');
      const want = ['route 10.244.2.0/24 proto 84', 'route fd10:0:0:2::/64 proto 84', 'neighbour 10.244.2.0', 'fdb 0a:00:00:00:00:03 dst 198.18.0.3', 'nexthop 7'];
      await waitFor(() => want.every((w) => seen.includes(w)), { timeoutMs: 3000, what: `all five deletions (seen: ${seen.join('; ')})` });
      expect(seen.filter((e) => e.includes('10.244.2.0/24'))).toEqual(['route 10.244.2.0/24 proto 84']); // its addition was not reported
    } finally {
      monitor.close();
    }
  });

  it('reports a route of another protocol added or put in place of Twill\'s, and none of Twill\'s own', async () => {
    const s = await scratch('frn');
    await s.ip('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    await s.ip('link', 'set', 'd0', 'up');
    await s.ip('addr', 'add', '198.18.0.1/24', 'dev', 'd0');
    const monitor = s.nl.watchLinks({ deletions: true });
    const seen: string[] = [];
    monitor.on('deleted', (d) => seen.push(describeDeletion(d)));
    try {
      await s.ip('route', 'add', '10.244.2.0/24', 'via', '198.18.0.2', 'proto', '84');
      await s.ip('route', 'replace', '10.244.2.0/24', 'via', '198.18.0.3', 'proto', 'static');
      await s.ip('route', 'add', '10.244.3.0/24', 'via', '198.18.0.3', 'table', '100');
      await s.ip('route', 'add', '10.244.4.0/24', 'via', '198.18.0.4');
      await waitFor(() => seen.includes('foreign 10.244.4.0/24 proto 3'), { timeoutMs: 3000, what: `the boot-protocol route (seen: ${seen.join('; ')})` });
      // Replaced in place: one RTM_NEWROUTE of protocol static, no RTM_DELROUTE of Twill's route.
      // Another table's route is of no interest.
      expect(seen).toEqual(['foreign 10.244.2.0/24 proto 4', 'foreign 10.244.4.0/24 proto 3']);
    } finally {
      monitor.close();
    }
  });

  it('reports an overrun of its buffer as ENOBUFS and keeps reporting afterwards', async () => {
    const s = await scratch('ovr');
    await s.ip('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    await s.ip('link', 'set', 'd0', 'up');
    await s.ip('link', 'set', 'd1', 'up');
    await s.ip('addr', 'add', '198.18.0.1/24', 'dev', 'd0');
    const monitor = s.nl.watchLinks({ deletions: true });
    const errors: (Error & { code?: string })[] = [];
    const seen: string[] = [];
    monitor.on('error', (e) => errors.push(e));
    monitor.on('deleted', (d) => seen.push(describeDeletion(d)));
    try {
      // 30,000 routes added and deleted while this process cannot read (execFileSync blocks it):
      // far more notifications than the buffer holds.
      const add = Array.from({ length: 30_000 }, (_, i) => `route add 10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 via 198.18.0.2 dev d0\n`).join('');
      execFileSync('ip', ['-n', s.name, '-batch', '-'], { input: add });
      execFileSync('ip', ['-n', s.name, '-batch', '-'], { input: add.replaceAll('route add', 'route del') });
      await waitFor(() => errors.length > 0, { timeoutMs: 5000, what: 'the overrun reported' });
      expect(errors[0]!.code).toBe('ENOBUFS');
      expect(errors[0]!.message).toMatch(/notifications dropped/);
      await s.ip('route', 'add', '10.244.9.0/24', 'via', '198.18.0.2', 'proto', '84');
      await s.ip('route', 'del', '10.244.9.0/24');
      await waitFor(() => seen.includes('route 10.244.9.0/24 proto 84'), { timeoutMs: 3000, what: 'a deletion after the overrun' });
    } finally {
      monitor.close();
    }
  });
});
