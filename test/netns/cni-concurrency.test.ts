import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cleanup.js';
import { CNI_SHIM, cniCall, startCniServer, writeSubnetFile } from '../helpers/cni.js';
import { createTestNetns, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

/*
 * cni.md §7 row 7 at scale: 200 pods added at the same moment on one host (the shim forwarding
 * to the agent's socket, as runtimes normally reach it), then all deleted at once. Every pod gets
 * its own address, and nothing is left: no address files, no attachments, no host veths.
 */
const PODS = 200;

describe.skipIf(!isRoot || !existsSync(CNI_SHIM))('twill CNI plugin under 200 concurrent ADDs and DELs', () => {
  useCleanup();

  it('gives 200 distinct addresses and releases all of them', { timeout: 240_000 }, async () => {
    const host = await createTestNetns('cnihost');
    const dir = tempDir('cni-conc');
    const subnetFile = writeSubnetFile({ subnet: '10.244.8.1/23', dir });
    const dataDir = join(dir, 'ipam');
    const { socket } = await startCniServer(host, { dataDir });
    const pods: TestNetns[] = [];
    for (let i = 0; i < PODS; i += 25) pods.push(...await Promise.all(Array.from({ length: Math.min(25, PODS - i) }, () => createTestNetns('cpod'))));
    const conf = { cniVersion: '1.0.0', name: 'conc', type: 'twill', subnetFile, dataDir };

    const adds = await Promise.all(pods.map((pod, i) => cniCall(host, { command: 'ADD', containerId: `conc${i}`, netns: pod.netnsPath, conf, socket })));
    const failures = adds.filter((r) => r.code !== 0).map((r) => r.stdout + r.stderr);
    expect(failures).toEqual([]);
    const ips = adds.map((r) => (r.json!.ips as { address: string }[])[0]!.address);
    expect(new Set(ips).size).toBe(PODS);
    const veths = (await host.links()).filter((l) => l.linkinfo?.info_kind === 'veth');
    expect(veths).toHaveLength(PODS);
    expect(veths.every((v) => v.master === 'cni0')).toBe(true);
    // Each pod holds exactly the address its result names.
    const sample = [0, 99, 199].map((i) => pods[i]!);
    for (const [k, pod] of sample.entries()) {
      const i = [0, 99, 199][k]!;
      expect((await pod.link('eth0'))!.addr_info!.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).toEqual([ips[i]]);
    }

    const dels = await Promise.all(pods.map((pod, i) => cniCall(host, { command: 'DEL', containerId: `conc${i}`, netns: pod.netnsPath, conf, socket })));
    expect(dels.filter((r) => r.code !== 0).map((r) => r.stdout + r.stderr)).toEqual([]);
    const left = readdirSync(join(dataDir, 'conc')).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    expect(left).toEqual([]);
    expect(existsSync(join(dataDir, 'conc', 'attachments')) ? readdirSync(join(dataDir, 'conc', 'attachments')) : []).toEqual([]);
    expect((await host.links()).filter((l) => l.linkinfo?.info_kind === 'veth')).toEqual([]);
  });
});
