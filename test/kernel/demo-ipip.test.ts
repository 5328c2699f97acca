import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STATE_FILE } from '../../src/ctl/demo/state.js';
import { listNetns } from '../../src/netlink/index.js';
import { run } from '../helpers/exec.js';
import { kernelHasIpip } from '../helpers/kernel-features.js';
import { scaled } from '../helpers/time-scale.js';
import { isRoot } from '../helpers/vitest.js';

// `twillctl demo --backend ipip` as a user runs it, on a kernel with IPIP: run with
// `npm run test:kernel -- test/kernel/demo-ipip.test.ts` (test/integration/demo.test.ts checks
// the refusal on a kernel without it).

const CTL = resolve(import.meta.dirname, '../../dist/src/ctl/main.js');

interface DemoJson {
  backend: string;
  hosts: { name: string; subnet: string }[];
  pods: { name: string; ip: string }[];
  matrix: { from: string; to: string; ok: boolean; lossPct: number }[];
  ok: boolean;
}

describe.skipIf(!isRoot)('twillctl demo --backend ipip', () => {
  it('builds 3 hosts with 2 pods each, every pod reaches every other through twill.ipip, and everything is removed', async () => {
    if (!await kernelHasIpip()) throw new Error('this kernel has no IPIP: run this file with `npm run test:kernel` (test/vm)');
    if (!existsSync(CTL)) throw new Error(`${CTL} is missing: run \`npm run build\` first`);
    // The VM's emulated CPUs start twilld slowly: its readiness deadline scales like the test's.
    const r = await run('node', [CTL, 'demo', '--json', '--no-iperf', '--backend', 'ipip', '--ready-timeout', `${scaled(30)}s`], { allowFailure: true, timeoutMs: scaled(110_000) });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as DemoJson;
    expect(j.backend).toBe('ipip');
    expect(j.hosts).toHaveLength(3);
    expect(j.pods).toHaveLength(6);
    expect(j.matrix).toHaveLength(30);
    expect(j.matrix.filter((m) => !m.ok || m.lossPct !== 0)).toEqual([]);
    expect(j.ok).toBe(true);
    expect(listNetns().filter((n) => n.startsWith('twill-demo-'))).toEqual([]);
    expect(existsSync(STATE_FILE)).toBe(false);
  });
});
