import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cleanup.js';
import { etcdAvailable, startEtcd, type Etcd } from '../helpers/etcd.js';
import { run } from '../helpers/exec.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

const CTL = resolve(import.meta.dirname, '../../dist/src/ctl/main.js');
const PREFIX = '/coreos.com/network';

describe.skipIf(!isRoot || !etcdAvailable())('twillctl against a real etcd', () => {
  useCleanup();
  let etcd: Etcd;
  let dir: string;
  const ctl = (args: string[], input?: string) =>
    run('node', [CTL, '--etcd-endpoints', etcd.clientUrl, ...args], { allowFailure: true, ...(input === undefined ? {} : { input }) });

  beforeAll(async () => {
    etcd = await startEtcd();
    dir = tempDir('twillctl');
  });

  it('config set validates, stores, and config get prints it back', async () => {
    const file = join(dir, 'net.json');
    writeFileSync(file, '{"Network": "10.244.0.0/16", "Backend": {"Type": "alloc"}}\n');
    const set = await ctl(['config', 'set', file]);
    expect(set.code).toBe(0);
    expect(set.stdout).toBe('network config stored: 10.244.0.0/16, /24 subnets 10.244.1.0/24..10.244.255.0/24, backend alloc\n');
    expect(await etcd.etcdctl(['get', `${PREFIX}/config`, '--print-value-only'])).toContain('"Network": "10.244.0.0/16"');
    const get = await ctl(['config', 'get']);
    expect(get).toMatchObject({ code: 0, stdout: '{"Network": "10.244.0.0/16", "Backend": {"Type": "alloc"}}\n' });
  });

  it('refuses an invalid config with the field and value named, and writes nothing', async () => {
    for (const [text, message] of [
      ['{"Network": "10.244.0.1/16", "Backend": {"Type": "alloc"}}', /Network "10.244.0.1\/16": host bits are set/],
      ['{"Network": "10.244.0.0/16", "SubnetLen": 33, "Backend": {"Type": "alloc"}}', /SubnetLen 33: must be an integer 17..30/],
      ['{"Network": "10.244.0.0/16", "Backend": {"Type": "warp-drive"}}', /Backend.Type "warp-drive": is not a known backend/],
      ['{"Network": ', /is not valid JSON/],
      // Networks whose leases would take over the hosts' own routes (issue 13 item 2).
      ['{"Network": "0.0.0.0/0", "Backend": {"Type": "alloc"}}', /Network "0.0.0.0\/0": is the default route/],
      ['{"Network": "127.0.0.0/8", "Backend": {"Type": "alloc"}}', /overlaps the loopback range/],
      ['{"Network": "224.0.0.0/4", "Backend": {"Type": "alloc"}}', /overlaps the multicast range/],
      ['{"Network": "169.254.0.0/16", "Backend": {"Type": "alloc"}}', /overlaps the link-local range/],
      ['{"Network": "32.0.0.0/6", "Backend": {"Type": "alloc"}}', /is shorter than \/8/],
    ] as const) {
      const res = await ctl(['config', 'set', '-'], text);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(message);
    }
    expect((await ctl(['config', 'get'])).stdout).toContain('10.244.0.0/16');
    expect((await ctl(['config', 'set'])).code).toBe(2);
    expect((await ctl(['frobnicate'])).code).toBe(2);
  });

  it('lists leases as a table and as JSON, with reservations and expiry', async () => {
    const value = (ip: string) => JSON.stringify({ PublicIP: ip, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:01' } });
    const lease = (await etcd.etcdctl(['lease', 'grant', '3600'])).match(/lease ([0-9a-f]+) granted/)![1]!;
    await etcd.etcdctl(['put', '--lease', lease, `${PREFIX}/subnets/10.244.2.0-24`, value('198.18.0.2')]);
    await etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.10.0-24`, value('198.18.0.10')]);
    await etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.3.0-24`, 'not json']);
    const table = await ctl(['leases']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SUBNET\s+PUBLIC IP\s+BACKEND\s+EXPIRES$/);
    expect(lines[1]).toMatch(/^10\.244\.2\.0\/24\s+198\.18\.0\.2\s+vxlan\s+in (59m\d+s|1h)$/);
    expect(lines[2]).toMatch(/^10\.244\.10\.0\/24\s+198\.18\.0\.10\s+vxlan\s+reserved$/);
    expect(lines[3]).toMatch(/^malformed: \/coreos.com\/network\/subnets\/10.244.3.0-24: /);
    const asJson = JSON.parse((await ctl(['leases', '-o', 'json'])).stdout) as { leases: Record<string, unknown>[] };
    expect(asJson.leases).toEqual([
      expect.objectContaining({ subnet: '10.244.2.0/24', publicIp: '198.18.0.2', backendType: 'vxlan', reservation: false, backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:01' } }),
      expect.objectContaining({ subnet: '10.244.10.0/24', reservation: true, expiresAt: null }),
    ]);
  });

  it('dual-stack: config set refuses what the agents would, and leases show both subnets and addresses (issue 17)', async () => {
    const dual = { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48', Backend: { Type: 'vxlan' } };
    const refused = await ctl(['--etcd-prefix', '/dual/network', 'config', 'set', '-'], JSON.stringify({ ...dual, Backend: { Type: 'ipip' } }));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/EnableIPv6: the ipip backend carries IPv4 pods only \(IPv4-in-IPv4, as flannel's ipip\); for IPv6 pods use vxlan, host-gw or bgp/);
    const bad = await ctl(['--etcd-prefix', '/dual/network', 'config', 'set', '-'], JSON.stringify({ ...dual, IPv6Network: 'fe80::/64' }));
    expect(bad.stderr).toMatch(/IPv6Network "fe80::\/64": overlaps the link-local range fe80::\/10/);
    expect(await etcd.etcdctl(['get', '/dual/network/config'])).toBe('');

    const v6 = (ip: string, ipv6: string): string => JSON.stringify({ PublicIP: ip, PublicIPv6: ipv6, BackendType: 'vxlan', BackendData: null, BackendV6Data: { VNI: 1 } });
    await etcd.etcdctl(['put', '/dual/network/subnets/10.244.2.0-24&fc00:0:0:2::-64', v6('198.18.0.2', 'fd00::2')]);
    await etcd.etcdctl(['put', '/dual/network/subnets/0.0.0.0-0&fc00:0:0:9::-64', v6('0.0.0.0', 'fd00::9')]);
    await etcd.etcdctl(['put', '/dual/network/subnets/10.244.3.0-24', '{"PublicIP":"198.18.0.3","PublicIPv6":null,"BackendType":"vxlan"}']);
    const lines = (await ctl(['--etcd-prefix', '/dual/network', 'leases'])).stdout.trimEnd().split('\n').map((l) => l.split(/\s+/));
    expect(lines).toEqual([
      ['SUBNET', 'IPV6', 'SUBNET', 'PUBLIC', 'IP', 'PUBLIC', 'IPV6', 'BACKEND', 'EXPIRES'],
      ['10.244.2.0/24', 'fc00:0:0:2::/64', '198.18.0.2', 'fd00::2', 'vxlan', 'reserved'],
      ['10.244.3.0/24', '-', '198.18.0.3', '-', 'vxlan', 'reserved'],
      ['-', 'fc00:0:0:9::/64', '-', 'fd00::9', 'vxlan', 'reserved'],
    ]);
    const asJson = JSON.parse((await ctl(['--etcd-prefix', '/dual/network', 'leases', '-o', 'json'])).stdout) as { leases: Record<string, unknown>[] };
    expect(asJson.leases).toEqual([
      expect.objectContaining({ subnet: '10.244.2.0/24', ipv6Subnet: 'fc00:0:0:2::/64', publicIp: '198.18.0.2', publicIpv6: 'fd00::2', backendV6Data: { VNI: 1 } }),
      expect.objectContaining({ subnet: '10.244.3.0/24', ipv6Subnet: null, publicIpv6: null, backendV6Data: null }),
      expect.objectContaining({ subnet: '0.0.0.0/0', ipv6Subnet: 'fc00:0:0:9::/64', publicIp: '0.0.0.0' }),
    ]);
  });

  it('fails clearly when etcd is unreachable', async () => {
    const res = await run('node', [CTL, '--etcd-endpoints', 'http://127.0.0.1:1', 'leases'], { allowFailure: true, timeoutMs: 30_000 });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/twillctl: .*(unavailable|unreachable|connect)/i);
  });
});
