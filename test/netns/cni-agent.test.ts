import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cleanup.js';
import { addressFiles, bedCall as call, bedConf as conf, CNI_SHIM, createCniBed, resultAddress, startCniServer, type CniBed } from '../helpers/cni.js';
import { createTestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

/*
 * The agent's side of the CNI plugin (twilld's CNI service, run alone by
 * test/helpers/fixtures/cni-server.mjs): its address stores and its shutdown (issue 13, items 7
 * and 11). The plugin runs as runtimes run it: the shim, inside a "host" namespace.
 */

const GATEWAY = '10.244.11.1';

describe.skipIf(!isRoot || !existsSync(CNI_SHIM))('twill CNI service (the agent\'s side)', () => {
  useCleanup();

  it('item 11: refuses a dataDir it does not see as the caller does (two stores would hand out one address twice)', async () => {
    const bed = await createCniBed('in-process', GATEWAY);
    const masked = join(tempDir('cni-masked'), 'store');
    mkdirSync(masked);
    // The agent's own mount namespace (a slave: the pods' /run/netns mounts still reach it), with
    // a tmpfs over `masked`: as a twilld container that does not mount the conflist's dataDir sees
    // its own, empty directory there.
    const { socket } = await startCniServer(bed.host, {
      dataDir: join(tempDir('cni-own'), 'ipam'),
      wrapper: ['unshare', '--mount', '--propagation', 'slave', 'sh', '-c', 'mount -t tmpfs twill-masked "$0" && exec "$@"', masked],
    });
    const agent: CniBed = { ...bed, socket };
    const pod = await createTestNetns('pod');
    const refused = await call(agent, { command: 'ADD', containerId: 'two-stores', netns: pod.netnsPath, conf: conf({ ...bed, dataDir: join(masked, 'ipam') }) });
    expect(refused.json).toMatchObject({
      code: 7, msg: expect.stringMatching(/"dataDir" ".*\/store\/ipam" is not the same directory for twilld as for the runtime \(compared at .*\/store, which exists\)/) as unknown,
    });
    expect(existsSync(join(masked, 'ipam'))).toBe(false);
    // A dataDir both see alike is served.
    const served = await call(agent, { command: 'ADD', containerId: 'one-store', netns: pod.netnsPath, conf: conf(bed) });
    expect(served.code, served.stdout).toBe(0);
    expect(addressFiles(bed.dataDir)).toEqual([resultAddress(served)]);
    expect((await call(agent, { command: 'DEL', containerId: 'one-store', netns: pod.netnsPath, conf: conf(bed) })).code).toBe(0);
  });

  it('item 11: reconciles at start every dataDir the runtime\'s twill configs name, not only its own', async () => {
    const bed = await createCniBed('in-process', GATEWAY);
    // A pod added (with the agent down) into a dataDir that only the conflist names; then it dies.
    const pod = await createTestNetns('pod');
    const add = await call(bed, { command: 'ADD', containerId: 'in-conflist', netns: pod.netnsPath, conf: conf(bed) });
    expect(add.code, add.stdout).toBe(0);
    await pod.destroy();
    const confDir = tempDir('cni-confdir');
    writeFileSync(join(confDir, '10-twill.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'twill-test', plugins: [{ type: 'twill', dataDir: bed.dataDir }, { type: 'portmap' }] }));
    writeFileSync(join(confDir, '20-broken.conf'), '{ not json');
    const { daemon } = await startCniServer(bed.host, { dataDir: join(tempDir('cni-own'), 'ipam'), confDir });
    expect(addressFiles(bed.dataDir)).toEqual([]);
    await daemon.waitForOutput(/CNI configuration skipped while looking for twill dataDirs/);
  });

  it('item 11: a file where --cni-data-dir should be is logged as an error, and the service still runs', async () => {
    const bed = await createCniBed('in-process', GATEWAY);
    const file = join(tempDir('cni-file'), 'ipam');
    writeFileSync(file, 'not a directory');
    const { socket, daemon } = await startCniServer(bed.host, { dataDir: file });
    await daemon.waitForOutput(/CNI data directory .*\/ipam is a file, not a directory/);
    const pod = await createTestNetns('pod');
    const add = await call({ ...bed, socket }, { command: 'ADD', containerId: 'beside-a-file', netns: pod.netnsPath, conf: conf(bed) });
    expect(add.code, add.stdout).toBe(0);
    expect((await call({ ...bed, socket }, { command: 'DEL', containerId: 'beside-a-file', netns: pod.netnsPath, conf: conf(bed) })).code).toBe(0);
  });

  it('item 7: after calls with a FIFO as CNI_NETNS, SIGTERM still stops the service at once', { timeout: 90_000 }, async () => {
    const bed = await createCniBed('in-process', GATEWAY);
    const { socket, daemon } = await startCniServer(bed.host, { dataDir: bed.dataDir });
    const fifo = join(tempDir('cni-fifo'), 'netns');
    execFileSync('mkfifo', [fifo]);
    // One for each warm thread: a thread that opened the FIFO would wait for a writer forever.
    for (const id of ['fifo1', 'fifo2']) {
      const add = await call({ ...bed, socket }, { command: 'ADD', containerId: id, netns: fifo, conf: conf(bed), timeoutMs: 15_000 });
      expect(add.json?.code, add.stdout).toBe(4);
    }
    const started = Date.now();
    expect(await daemon.stop()).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
