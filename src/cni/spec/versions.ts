import { CniCode, CniError } from './errors.js';

/** The spec versions twill speaks; results can be written in each of them (result.ts). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
/** The newest, used for VERSION and for errors raised before the config's version is known. */
export const CURRENT_VERSION = '1.1.0';

function parts(version: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Compares two "x.y.z" versions: negative, zero or positive. Both must be well formed. */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a)!;
  const pb = parts(b)!;
  return pa[0] - pb[0] || pa[1] - pb[1] || pa[2] - pb[2];
}

/** True when `version` is at least `min`. */
export function atLeast(version: string, min: string): boolean {
  return compareVersions(version, min) >= 0;
}

/** Checks a config's cniVersion: code 7 when it is not a version, code 1 when twill does not speak it. */
export function requireSupportedVersion(version: unknown): string {
  if (typeof version !== 'string' || parts(version) === undefined) {
    throw new CniError(CniCode.INVALID_CONFIG, `cniVersion ${JSON.stringify(version)} is not a version like "1.0.0"`);
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(CniCode.INCOMPATIBLE_VERSION, `incompatible CNI versions: config is "${version}", twill supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return version;
}

/** Operations newer than some configs (CHECK since 0.4.0, STATUS and GC since 1.1.0): code 1 otherwise. */
export function requireVersionFor(command: string, version: string, min: string): void {
  if (!atLeast(version, min)) {
    throw new CniError(CniCode.INCOMPATIBLE_VERSION, `config version "${version}" does not allow ${command} (needs ${min} or newer)`);
  }
}

/**
 * The cniVersion a reply to this stdin is written in: the config's when twill speaks it, else
 * twill's own (a runtime cannot read a version it does not know).
 */
export function replyVersion(stdin: Buffer | string): string {
  let asked: unknown;
  try {
    asked = (JSON.parse(stdin.toString()) as { cniVersion?: unknown }).cniVersion;
  } catch {
    asked = undefined;
  }
  return typeof asked === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(asked) ? asked : CURRENT_VERSION;
}
