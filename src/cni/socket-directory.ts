import { chown, lstat, mkdir } from 'node:fs/promises';
import { TwillError } from '../core/errors.js';

/**
 * The CNI socket's directory. Whoever may write to it could replace the socket with one of their
 * own, which every pod's ADD would then talk to; so it must be root's and writable by nobody
 * else. A missing one is made root-only (0700; 0710 with the trusted group, which then may reach
 * the socket but not list or change the directory). An existing one is left as it is when it
 * passes, and refused otherwise: it may hold other files (flannel-style /run/twill holds the
 * subnet file), so its mode is the operator's to set.
 */
export async function prepareSocketDirectory(dir: string, group: number | undefined): Promise<void> {
  const owner = process.getuid?.() ?? 0;
  // Returns the first directory it made (parents missing are made the same way), or undefined.
  const made = await mkdir(dir, { recursive: true, mode: group === undefined ? 0o700 : 0o710 });
  if (made !== undefined && group !== undefined) await chown(dir, owner, group);
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new TwillError('ENOTDIR', `the CNI socket's directory ${dir} is not a directory`);
  if (st.uid !== owner) throw new TwillError('EPERM', `the CNI socket's directory ${dir} belongs to uid ${st.uid}, not to the agent's user (${owner}): its owner could replace the socket`);
  if ((st.mode & 0o022) !== 0) {
    throw new TwillError('EPERM', `the CNI socket's directory ${dir} is writable by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o777).toString(8)}): they could replace the socket; chmod go-w ${dir}`);
  }
}
