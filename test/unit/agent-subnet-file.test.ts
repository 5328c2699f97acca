import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSubnetFile, writeSubnetFile } from '../../src/agent/subnet-file.js';
import { SubnetEnvError, type SubnetEnv } from '../../src/core/subnet-env.js';

const ENV: SubnetEnv = { network: '10.244.0.0/16', subnet: '10.244.3.1/24', mtu: 1450, ipMasq: true };
const TEXT = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';
const isRoot = process.getuid?.() === 0;

describe('subnet file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'twill-subnet-file-'));
  });
  afterEach(async () => {
    await chmod(dir, 0o755).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('creates missing directories (0755) and writes the file (0644)', async () => {
    const path = join(dir, 'run', 'twill', 'subnet.env');
    const oldUmask = process.umask(0o077); // the file mode must not depend on the umask
    try {
      await writeSubnetFile(path, ENV);
    } finally {
      process.umask(oldUmask);
    }
    expect(await readFile(path, 'utf8')).toBe(TEXT);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    await writeSubnetFile(join(dir, 'a', 'subnet.env'), ENV);
    expect((await stat(join(dir, 'a'))).mode & 0o777).toBe(0o755 & ~process.umask());
  });

  it('replaces an existing file whole and leaves no temporary file behind', async () => {
    const path = join(dir, 'subnet.env');
    await writeFile(path, `${'# an old, longer file\n'.repeat(50)}${TEXT}`);
    await writeSubnetFile(path, { ...ENV, subnet: '10.244.9.1/24', ipMasq: false });
    expect(await readFile(path, 'utf8')).toBe(TEXT.replace('10.244.3.1', '10.244.9.1').replace('IPMASQ=true', 'IPMASQ=false'));
    for (let i = 0; i < 20; i++) await writeSubnetFile(path, { ...ENV, mtu: 1400 + i });
    expect(await readdir(dir)).toEqual(['subnet.env']);
    expect((await readSubnetFile(path))?.mtu).toBe(1419);
  });

  it('never shows a reader a partial file while writers race', async () => {
    const path = join(dir, 'subnet.env');
    await writeSubnetFile(path, ENV);
    const writes = Array.from({ length: 30 }, (_, i) => writeSubnetFile(path, { ...ENV, mtu: 1300 + i }));
    const reads = Array.from({ length: 30 }, () => readSubnetFile(path));
    const seen = await Promise.all(reads);
    await Promise.all(writes);
    for (const env of seen) expect(env?.network).toBe('10.244.0.0/16');
    expect(await readdir(dir)).toEqual(['subnet.env']);
  });

  it('does not write an invalid env', async () => {
    const path = join(dir, 'subnet.env');
    await expect(writeSubnetFile(path, { ...ENV, mtu: 0 })).rejects.toThrow(SubnetEnvError);
    expect(await readdir(dir)).toEqual([]);
  });

  it('reads back what it wrote; undefined when the file does not exist', async () => {
    const path = join(dir, 'subnet.env');
    expect(await readSubnetFile(path)).toBeUndefined();
    expect(await readSubnetFile(join(dir, 'no', 'such', 'dir', 'subnet.env'))).toBeUndefined();
    await writeSubnetFile(path, ENV);
    expect(await readSubnetFile(path)).toEqual(ENV);
  });

  it('names the file when its contents are bad', async () => {
    const path = join(dir, 'subnet.env');
    await writeFile(path, TEXT.replace('FLANNEL_MTU=1450\n', ''));
    await expect(readSubnetFile(path)).rejects.toThrow(`${path}: FLANNEL_MTU is missing`);
  });

  it('throws other errors: a directory where the file should be, a file where a directory should be', async () => {
    await mkdir(join(dir, 'subnet.env'));
    await expect(readSubnetFile(join(dir, 'subnet.env'))).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(writeSubnetFile(join(dir, 'subnet.env'), ENV)).rejects.toBeDefined();
    await writeFile(join(dir, 'file'), 'x');
    // mkdir -p reports EEXIST for a file in the way; either way the message names that path.
    await expect(writeSubnetFile(join(dir, 'file', 'subnet.env'), ENV)).rejects.toThrow(join(dir, 'file'));
    await expect(readSubnetFile(join(dir, 'file', 'subnet.env'))).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect((await readdir(dir)).sort()).toEqual(['file', 'subnet.env']); // no temporary file left
  });

  it.skipIf(isRoot)('throws when the directory is not writable or the file not readable (needs a non-root user)', async () => {
    const path = join(dir, 'subnet.env');
    await writeSubnetFile(path, ENV);
    await chmod(path, 0o000);
    await expect(readSubnetFile(path)).rejects.toMatchObject({ code: 'EACCES' });
    await chmod(dir, 0o555);
    await expect(writeSubnetFile(path, ENV)).rejects.toMatchObject({ code: 'EACCES' });
  });
});
