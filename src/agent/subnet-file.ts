import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { formatSubnetEnv, parseSubnetEnv, type AnySubnetEnv } from '../core/subnet-env.js';

// The subnet file (default /run/twill/subnet.env) tells the CNI plugin which subnet, MTU and
// masquerade setting this node has, and tells the next twilld which lease it held. The CNI plugin
// may read it at any moment, so it is replaced atomically: readers see the old file or the new
// one, never a half-written one (flannel does the same, WriteSubnetFile in main.go).

/**
 * Writes `env` to `path` atomically: a temporary file in the same directory (rename is atomic
 * only within one filesystem), fsync, rename over `path`, fsync the directory so the rename
 * survives a crash. The directory is created (mode 0755) if missing; the file gets mode 0644
 * so the CNI plugin and operators can read it.
 */
export async function writeSubnetFile(path: string, env: AnySubnetEnv): Promise<void> {
  const text = formatSubnetEnv(env); // validates first: a bad value never reaches the disk
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  // Dot-prefixed and random, so it never collides with a concurrent writer or looks like the file.
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const file = await open(tmp, 'wx', 0o644);
    try {
      await file.chmod(0o644); // the mode given to open() is reduced by the umask
      await file.writeFile(text, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined); // best effort; the error that matters is `err`
    throw err;
  }
  await syncDir(dir);
}

/**
 * The subnet file's contents, or undefined when it does not exist (a first start). Any other
 * failure is thrown: an unreadable file as the fs error, bad contents as a SubnetEnvError whose
 * message starts with `path`.
 */
export async function readSubnetFile(path: string): Promise<AnySubnetEnv | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseSubnetEnv(text, path, { allowIpv6Only: true });
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // Some filesystems cannot fsync a directory; the rename has happened, so that is no failure.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw err;
  } finally {
    await handle.close();
  }
}
