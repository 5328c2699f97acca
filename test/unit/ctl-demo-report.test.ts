/**
 * `twillctl demo --ipv6` (issue 17): the flag, and the report of a dual-stack run: both subnets per
 * host, both addresses per pod, a matrix per family, and a summary that fails on either family.
 */
import { describe, expect, it } from 'vitest';
import { parseDemoFlags } from '../../src/ctl/demo/flags.js';
import type { PingResult } from '../../src/ctl/demo/measure.js';
import { formatHuman, resultJson, summaryLine, type DemoResult } from '../../src/ctl/demo/report.js';

const pods = [
  { name: 'twill-demo-host1-pod1', label: 'h1p1', host: 'twill-demo-host1', ip: '10.244.1.2', ipv6: 'fd10:0:0:1::2' },
  { name: 'twill-demo-host2-pod1', label: 'h2p1', host: 'twill-demo-host2', ip: '10.244.2.2', ipv6: 'fd10:0:0:2::2' },
];
const both = (ok6: boolean): { matrix: PingResult[]; matrix6: PingResult[] } => ({
  matrix: [{ from: pods[0]!.name, to: pods[1]!.name, ok: true, rttMs: 0.05, lossPct: 0 }, { from: pods[1]!.name, to: pods[0]!.name, ok: true, rttMs: 0.06, lossPct: 0 }],
  matrix6: [{ from: pods[0]!.name, to: pods[1]!.name, ok: ok6, rttMs: ok6 ? 0.07 : null, lossPct: ok6 ? 0 : 100 }, { from: pods[1]!.name, to: pods[0]!.name, ok: true, rttMs: 0.08, lossPct: 0 }],
});
const result = (ok6: boolean): DemoResult => ({
  backend: 'vxlan',
  hosts: [
    { name: 'twill-demo-host1', underlayIp: '198.18.0.1', subnet: '10.244.1.0/24', underlayIpv6: 'fd00:18::1', subnetV6: 'fd10:0:0:1::/64' },
    { name: 'twill-demo-host2', underlayIp: '198.18.0.2', subnet: '10.244.2.0/24', underlayIpv6: 'fd00:18::2', subnetV6: 'fd10:0:0:2::/64' },
  ],
  pods, ...both(ok6), iperf: null, iperfNote: 'skipped (--no-iperf)', ok: ok6,
});

describe('twillctl demo --ipv6', () => {
  it('is off unless asked for', () => {
    const run = (argv: string[]): boolean => {
      const c = parseDemoFlags(argv, {});
      if (c.kind !== 'run') throw new Error('not a run');
      return c.flags.ipv6;
    };
    expect(run([])).toBe(false);
    expect(run(['--ipv6'])).toBe(true);
  });

  it('prints both subnets, both addresses and a matrix per family', () => {
    const text = formatHuman(result(true));
    expect(text).toMatch(/twill-demo-host1\s+198\.18\.0\.1\s+fd00:18::1\s+10\.244\.1\.0\/24\s+fd10:0:0:1::\/64/);
    expect(text).toMatch(/h2p1\s+twill-demo-host2-pod1\s+twill-demo-host2\s+10\.244\.2\.2\s+fd10:0:0:2::2/);
    expect(text).toContain('Ping over IPv4');
    expect(text).toMatch(/Ping over IPv6[^\n]*\n[^\n]*\nh1p1 fd10:0:0:1::2\s+-\s+0\.070\n/);
    expect(summaryLine(result(true))).toBe('OK: over IPv4 2 of 2 pod pairs reachable (across hosts: 2 of 2), over IPv6 2 of 2 pod pairs reachable (across hosts: 2 of 2); backend vxlan, 2 hosts, 2 pods, dual-stack\n');
  });

  it('fails when a pair is unreachable over IPv6 alone, and says so in JSON too', () => {
    expect(summaryLine(result(false))).toMatch(/^FAILED: over IPv4 2 of 2 .*over IPv6 1 of 2 pod pairs reachable/);
    expect(formatHuman(result(false))).toMatch(/h1p1 fd10:0:0:1::2\s+-\s+FAIL/);
    const json = JSON.parse(resultJson(result(false))) as { ok: boolean; pods: { ipv6?: string }[]; matrix6: { ok: boolean }[] };
    expect(json.ok).toBe(false);
    expect(json.pods.map((p) => p.ipv6)).toEqual(['fd10:0:0:1::2', 'fd10:0:0:2::2']);
    expect(json.matrix6.map((m) => m.ok)).toEqual([false, true]);
  });
});
