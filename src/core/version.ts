import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'twill';

let cached: string | undefined;

/**
 * Twill's version, read from the package.json at the top of the install. The file is found by
 * walking up from this module, so the same code works from src/core/ (vitest), from
 * dist/src/core/ (a build) and from /opt/twill/dist/src/core/ (the container image).
 */
export function twillVersion(): string {
  cached ??= readVersion();
  return cached;
}

function readVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const version = versionIn(join(dir, 'package.json'));
    if (version !== undefined) return version;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`twill: no package.json named "${PACKAGE_NAME}" above ${import.meta.url}`);
    dir = parent;
  }
}

/** The version in `path` if it is Twill's package.json; undefined if missing, unreadable or another package's. */
function versionIn(path: string): string | undefined {
  let pkg: { name?: unknown; version?: unknown };
  try {
    pkg = JSON.parse(readFileSync(path, 'utf8')) as typeof pkg;
  } catch {
    return undefined;
  }
  return pkg.name === PACKAGE_NAME && typeof pkg.version === 'string' ? pkg.version : undefined;
}
