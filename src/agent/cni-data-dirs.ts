import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readRegularFile } from '../core/regular-file.js';
import { DEFAULT_DATA_DIR } from '../cni/plugin-pool.js';

/**
 * The address stores (dataDirs) the twill plugin uses on this node: the agent's --cni-data-dir,
 * and the dataDir of every twill entry in the runtime's CNI configuration directory (the default
 * one for an entry without). Start-up reconciliation covers them all, not only the agent's own.
 * A file that cannot be read or parsed is reported and skipped.
 */
export function cniDataDirs(agentDataDir: string, confDir: string | undefined, onProblem: (file: string, err: Error) => void): string[] {
  const dirs = new Set([agentDataDir]);
  if (confDir === undefined) return [...dirs];
  let names: string[];
  try {
    names = readdirSync(confDir).filter((n) => /\.(conflist|conf|json)$/.test(n)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onProblem(confDir, err as Error);
    return [...dirs];
  }
  for (const name of names) {
    const file = join(confDir, name);
    try {
      for (const dir of twillDataDirs(JSON.parse(readRegularFile(file)) as unknown)) dirs.add(dir);
    } catch (err) {
      onProblem(file, err as Error);
    }
  }
  return [...dirs];
}

/** The dataDirs of the twill entries of one network configuration (a list, or a single plugin's). */
function twillDataDirs(conf: unknown): string[] {
  if (typeof conf !== 'object' || conf === null) return [];
  const plugins = (conf as { plugins?: unknown }).plugins;
  const entries = Array.isArray(plugins) ? plugins : [conf];
  const dirs: string[] = [];
  for (const entry of entries) {
    const { type, dataDir } = (entry ?? {}) as { type?: unknown; dataDir?: unknown };
    if (type !== 'twill') continue;
    if (dataDir === undefined) dirs.push(DEFAULT_DATA_DIR);
    else if (typeof dataDir === 'string' && dataDir.startsWith('/')) dirs.push(dataDir);
    else throw new Error(`twill's "dataDir" ${JSON.stringify(dataDir)} is not an absolute path`);
  }
  return dirs;
}
