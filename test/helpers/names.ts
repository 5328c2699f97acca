/**
 * Unique, recognisable names for the namespaces, links and temp dirs a test creates.
 *
 * - Network namespaces: `twt-<owner>.<id>-<label>`, where `<owner>` is this process's pid in
 *   base36 and `<id>` 4 random base36 chars. Every test namespace starts with {@link NETNS_PREFIX},
 *   so leftovers are easy to spot (`ip netns list | grep ^twt-`), and the owner pid lets
 *   `sweepStale()` (cleanup.ts) delete those whose process died without cleaning up. The "." after
 *   the owner marks the names made here: other `twt-` names (ad-hoc ones in older tests) are never
 *   taken for ours.
 * - Interface names: `tw` + 4 random base36 chars + an optional suffix, at most 15 bytes
 *   (IFNAMSIZ - 1). Unique within this process; random across processes.
 *
 * Nothing here touches the system; these are pure functions over a per-process counter/set.
 */
import { randomBytes } from 'node:crypto';

/** Prefix of every network namespace (and temp dir) the test helpers create. */
export const NETNS_PREFIX = 'twt-';

/** Linux interface names are at most 15 bytes (IFNAMSIZ 16 including the NUL). */
export const MAX_IFNAME_BYTES = 15;

/** Network namespace names are file names in /run/netns. */
const MAX_NETNS_BYTES = 255;

/** The owner tag of this process: its pid in base36 ("1a2b"). */
export const OWNER_TAG: string = process.pid.toString(36);

// Shared by every instance of this module in the process (vitest re-evaluates modules per file).
const USED_KEY = Symbol.for('twill.test.names.used');
const used: Set<string> = ((globalThis as Record<symbol, unknown>)[USED_KEY] as Set<string> | undefined)
  ?? ((globalThis as Record<symbol, unknown>)[USED_KEY] = new Set<string>()) as Set<string>;

/** `n` random base36 characters ([0-9a-z]). */
export function randomId(n = 4): string {
  const bytes = randomBytes(n);
  let out = '';
  for (let i = 0; i < n; i++) out += (bytes[i]! % 36).toString(36);
  return out;
}

/** A random id not handed out before by this process under the same prefix. */
function uniqueId(prefix: string, n: number): string {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const id = randomId(n);
    const key = `${prefix}:${id}`;
    if (!used.has(key)) {
      used.add(key);
      return id;
    }
  }
  throw new Error(`names: ran out of unique ids for ${prefix}`);
}

/** Labels end up in file and interface names: keep them to [a-z0-9_.-]. */
function checkLabel(label: string, what: string): string {
  if (!/^[a-z0-9_.-]*$/i.test(label)) {
    throw new Error(`names: ${what} ${JSON.stringify(label)} may only contain letters, digits, "_", "." and "-"`);
  }
  return label;
}

/** A fresh id to group the namespaces of one cluster/fixture (4 base36 chars, unique in this process). */
export function groupId(): string {
  return uniqueId('group', 4);
}

/**
 * A network namespace name: `twt-<owner>.<group>-<label>`. Pass the same `group` (see
 * {@link groupId}) for namespaces that belong together; omit it for a fresh random one.
 */
export function netnsName(label: string, group: string = groupId()): string {
  if (!/^[0-9a-z]{4}$/.test(group)) throw new Error(`names: group ${JSON.stringify(group)} must be 4 base36 characters (groupId())`);
  const name = `${NETNS_PREFIX}${OWNER_TAG}.${group}-${checkLabel(label, 'label')}`;
  if (Buffer.byteLength(name) > MAX_NETNS_BYTES) throw new Error(`names: namespace name too long: ${name}`);
  return name;
}

/**
 * An interface name: `tw` + 4 random base36 chars + `suffix`, unique in this process.
 * Throws if the result would exceed 15 bytes (i.e. a suffix longer than 9 bytes).
 */
export function ifName(suffix = ''): string {
  checkLabel(suffix, 'interface suffix');
  if (Buffer.byteLength(suffix) > MAX_IFNAME_BYTES - 6) {
    throw new Error(`names: interface suffix ${JSON.stringify(suffix)} too long (max ${MAX_IFNAME_BYTES - 6} bytes)`);
  }
  const name = `tw${uniqueId('if', 4)}${suffix}`;
  return name;
}

/** A temp dir base name: `twt-<owner>.<id>-<label>` (see tempDir in cleanup.ts). */
export function tempDirName(label: string): string {
  return `${NETNS_PREFIX}${OWNER_TAG}.${uniqueId('tmp', 4)}-${checkLabel(label, 'label')}`;
}

/**
 * The owner pid encoded in a helper-made name (`twt-<owner>.<id>-...`), or undefined when `name`
 * was not made by these helpers.
 */
export function ownerPidOf(name: string): number | undefined {
  const m = /^twt-([0-9a-z]{1,12})\.[0-9a-z]{4}-/.exec(name);
  if (!m) return undefined;
  const pid = parseInt(m[1]!, 36);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}
