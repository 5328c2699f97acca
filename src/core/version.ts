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

function versionIn(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
  return pkg.name === PACKAGE_NAME && typeof pkg.version === 'string' ? pkg.version : undefined;
}
