import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { CniCode, CniError } from './spec/errors.js';

/**
 * The agent and the shim's in-process fallback must allocate from one set of records: the agent
 * serves calls while it runs, the fallback while it does not, and two stores hand out the same
 * address twice. The config's dataDir is a path on the host, where the runtime runs the shim; an
 * agent in a container sees its own file system unless the path is mounted in at the same place.
 * So for each call over the socket the agent compares the directory it would use with the one the
 * caller's process sees (through /proc/<pid>/root, the caller's root in its mount namespace): the
 * same device and inode, or the call is refused. A dataDir not made yet is judged by its nearest
 * existing ancestor. Two stat(2) calls; a caller whose process the agent cannot see (another PID
 * namespace: the pid is 0) cannot be checked, and is refused too.
 */
export function requireSameDataDir(dataDir: string, callerPid: number): void {
  const refuse = (why: string): CniError => new CniError(CniCode.INVALID_CONFIG,
    `invalid network config: "dataDir" ${JSON.stringify(dataDir)} ${why}; the agent and the plugin run without it must share one address store`);
  if (!Number.isInteger(callerPid) || callerPid <= 0) {
    throw refuse('cannot be compared with the caller\'s: its process is not visible to twilld (run twilld in the host\'s PID namespace)');
  }
  let path = dataDir;
  let ours = statOrUndefined(path);
  while (ours === undefined && path !== '/') {
    path = dirname(path);
    ours = statOrUndefined(path);
  }
  const theirs = statOrUndefined(`/proc/${callerPid}/root${path === '/' ? '' : path}`);
  if (ours === undefined || theirs === undefined || ours.dev !== theirs.dev || ours.ino !== theirs.ino) {
    const where = path === dataDir ? '' : ` (compared at ${path}, which exists)`;
    throw refuse(`is not the same directory for twilld as for the runtime${where}: mount the host's ${dataDir} into the twilld container at the same path`);
  }
}

function statOrUndefined(path: string): { dev: number; ino: number } | undefined {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}
