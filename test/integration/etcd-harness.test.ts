/**
 * Proves the etcd test helper (test/helpers/etcd.ts): a real etcd starts on free loopback ports,
 * keeps its data across a SIGKILL and a restart, removes its data dir on stop, and serves TLS
 * with client-certificate auth using makeTestPki(); and etcdBulk writes thousands of keys in one
 * transaction.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CleanupRegistry, processAlive, tempDir, tracked } from '../helpers/cleanup.js';
import { CommandError, run } from '../helpers/exec.js';
import { etcdBulk } from '../helpers/etcd-bulk.js';
import { etcdAvailable, freePort, makeTestPki, startEtcd } from '../helpers/etcd.js';
import { createTestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

describe.skipIf(!isRoot || !etcdAvailable())('etcd harness', () => {
  useCleanup();

  it('finds free ports', async () => {
    const [a, b] = await Promise.all([freePort(), freePort()]);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
  });

  it('starts, stores, survives SIGKILL and restart, and removes its data on stop', async () => {
    const etcd = await startEtcd();
    expect(etcd.clientUrl).toBe(`http://127.0.0.1:${etcd.clientPort}`);
    expect(etcd.endpoint).toBe(`127.0.0.1:${etcd.clientPort}`);
    expect(etcd.running).toBe(true);
    expect(existsSync(etcd.dataDir)).toBe(true);
    expect(Number(readFileSync(`${etcd.workDir}/etcd.pid`, 'utf8'))).toBe(etcd.pid);
    expect(await etcd.healthy()).toBe(true);

    await etcd.etcdctl(['put', '/twill/test/a', 'hello']);
    await etcd.etcdctl(['put', '/twill/test/b'], { input: '{"Network":"10.244.0.0/16"}' });
    expect(await etcd.etcdctl(['get', '/twill/test/a', '--print-value-only'])).toBe('hello\n');
    const keys = await etcd.etcdctl(['get', '--prefix', '/twill/test/', '--keys-only']);
    expect(keys.split('\n').filter(Boolean)).toEqual(['/twill/test/a', '/twill/test/b']);

    const pid = etcd.pid!;
    await etcd.kill();
    expect(etcd.running).toBe(false);
    expect(etcd.pid).toBeUndefined();
    await waitFor(() => !processAlive(pid), { what: 'etcd process gone' });
    expect(await etcd.healthy()).toBe(false);
    // (Later flags win: keep the failing calls short.)
    const down = await etcd.etcdctlResult(['--command-timeout=1s', 'get', '/twill/test/a']);
    expect(down.code).not.toBe(0);
    await expect(etcd.etcdctl(['--command-timeout=1s', 'get', '/twill/test/a'])).rejects.toBeInstanceOf(CommandError);

    await etcd.restart();
    expect(etcd.running).toBe(true);
    expect(etcd.pid).not.toBe(pid);
    expect(await etcd.etcdctl(['get', '/twill/test/b', '--print-value-only'])).toBe('{"Network":"10.244.0.0/16"}\n');

    // restart() of a running etcd: graceful stop, same data.
    await etcd.restart();
    expect(await etcd.etcdctl(['get', '/twill/test/a', '--print-value-only'])).toBe('hello\n');

    // A frozen member (SIGSTOP) is unhealthy until thawed.
    await etcd.kill('SIGSTOP');
    expect(await etcd.healthy()).toBe(false);
    await etcd.kill('SIGCONT');
    await etcd.waitHealthy(10_000);

    const workDir = etcd.workDir;
    expect(tracked().paths).toContain(workDir);
    await etcd.stop();
    await etcd.stop();
    expect(etcd.running).toBe(false);
    expect(existsSync(workDir)).toBe(false);
    expect(tracked().paths).not.toContain(workDir);
    expect(tracked().pids).not.toContain(pid);
  });

  it('keeps the data dir with keepData', async () => {
    const etcd = await startEtcd({ keepData: true });
    await etcd.etcdctl(['put', 'k', 'v']);
    await etcd.stop();
    expect(existsSync(etcd.dataDir)).toBe(true);
    // Not tracked for deletion at exit: the caller owns it now.
    expect(tracked().paths).not.toContain(etcd.workDir);
    rmSync(etcd.workDir, { recursive: true, force: true });
  });

  it('is stopped by the cleanup registry when the test does not stop it', async () => {
    // A registry of its own, unwound here the way useCleanup's afterEach would.
    const reg = new CleanupRegistry('t');
    const etcd = await startEtcd({ registry: reg });
    const pid = etcd.pid!;
    const workDir = etcd.workDir;
    await reg.runAll();
    await waitFor(() => !processAlive(pid), { what: 'etcd process gone' });
    expect(existsSync(workDir)).toBe(false);
  });

  it('serves TLS with client certificate auth (makeTestPki)', async () => {
    const pki = await makeTestPki(tempDir('pki'));
    for (const f of [pki.caFile, pki.server.certFile, pki.server.keyFile, pki.client.certFile, pki.client.keyFile]) {
      expect(existsSync(f), f).toBe(true);
    }
    const etcd = await startEtcd({ tls: pki.etcdTls({ clientCertAuth: true }) });
    expect(etcd.clientUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await etcd.etcdctl(['put', 'secure', 'yes']);
    expect(await etcd.etcdctl(['get', 'secure', '--print-value-only'])).toBe('yes\n');

    // Without a client certificate the server refuses.
    const noCert = await run('etcdctl', [`--endpoints=${etcd.clientUrl}`, `--cacert=${pki.caFile}`, '--command-timeout=1s', 'get', 'secure'],
      { env: { ETCDCTL_API: '3' }, allowFailure: true });
    expect(noCert.code).not.toBe(0);

    // A certificate from another CA is refused as well.
    const other = await makeTestPki(tempDir('pki2'), { caName: 'other-ca' });
    const wrongCa = await run('etcdctl', [`--endpoints=${etcd.clientUrl}`, `--cacert=${pki.caFile}`,
      `--cert=${other.client.certFile}`, `--key=${other.client.keyFile}`, '--command-timeout=1s', 'get', 'secure'],
    { env: { ETCDCTL_API: '3' }, allowFailure: true });
    expect(wrongCa.code).not.toBe(0);
  });

  it('runs inside a test namespace', async () => {
    const ns = await createTestNetns('etcd');
    const etcd = await startEtcd({ netns: ns.name });
    expect(ns.pids()).toContain(etcd.pid);
    await etcd.etcdctl(['put', 'inside', 'ns']);
    expect(await etcd.etcdctl(['get', 'inside', '--print-value-only'])).toBe('ns\n');
    // Its loopback is the namespace's, not the test process's.
    expect(await etcd.healthy()).toBe(true);
  });

  it('puts and deletes thousands of keys in one transaction (etcdBulk, the benchmarks\' writer)', async () => {
    const etcd = await startEtcd({ extraArgs: ['--max-txn-ops=3000'] });
    const bulk = etcdBulk(etcd.clientUrl);
    try {
      const revision = async (): Promise<number> => Number((JSON.parse(await etcd.etcdctl(['get', 'none', '-w', 'json'])) as { header: { revision: string | number } }).header.revision);
      const count = async (prefix: string): Promise<number> => (await etcd.etcdctl(['get', '--prefix', prefix, '--keys-only'])).split('\n').filter(Boolean).length;
      const before = await revision();
      const entries = Array.from({ length: 2500 }, (_, i) => [`/bulk/${String(i).padStart(4, '0')}`, `{"i":${i}}`] as const);
      await bulk.putAll(entries);
      // One transaction is one revision, however many keys it wrote.
      expect(await revision()).toBe(before + 1);
      expect(await count('/bulk/')).toBe(2500);
      expect(await etcd.etcdctl(['get', '/bulk/1234', '--print-value-only'])).toBe('{"i":1234}\n');
      await bulk.deleteAll(entries.slice(0, 2000).map(([key]) => key));
      expect(await revision()).toBe(before + 2);
      expect(await etcd.etcdctl(['get', '--prefix', '/bulk/', '--keys-only'])).toMatch(/^\/bulk\/2000\n/);
      expect(await count('/bulk/')).toBe(500);
      // More operations than etcd allows: refused as a whole, nothing written.
      await expect(bulk.putAll(Array.from({ length: 3001 }, (_, i) => [`/over/${i}`, 'x'] as const))).rejects.toThrow(/too many operations/);
      expect(await count('/over/')).toBe(0);
      await bulk.warmUp('/warm/', 100);
      expect(await etcd.etcdctl(['get', '--prefix', '/warm/', '--keys-only'])).toBe('');
    } finally {
      bulk.close();
    }
  });
});
