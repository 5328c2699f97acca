import { MAX_IFNAME_BYTES } from '../../core/ifname.js';
import { CniCode, CniError } from './errors.js';

/** The CNI_* parameters of one call (SPEC.md "Parameters"). */
export interface CniEnv {
  readonly command: CniCommand;
  readonly containerId: string;
  /** CNI_NETNS; '' when unset (allowed for DEL, GC and STATUS). */
  readonly netns: string;
  readonly ifname: string;
  /** CNI_ARGS, "K=V;K=V" split into pairs (deprecated by the spec, still sent by containerd). */
  readonly args: ReadonlyMap<string, string>;
  readonly path: readonly string[];
}

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof COMMANDS)[number];

/** SPEC.md: "alphanumeric, plus hyphen, underscore and period", starting alphanumeric (libcni's check). */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function invalid(variable: string, value: string | undefined, why: string): CniError {
  // The spec requires the message to name the variable.
  return new CniError(CniCode.INVALID_ENV, `${variable} ${value === undefined ? 'is not set' : `${JSON.stringify(value)} ${why}`}`);
}

/** Linux's dev_valid_name(): 1..15 bytes, not "." or "..", no "/", ":" or whitespace. */
function validIfname(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= MAX_IFNAME_BYTES && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

function parseArgs(text: string | undefined): Map<string, string> {
  const args = new Map<string, string>();
  if (!text) return args;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalid('CNI_ARGS', text, 'is not a list of KEY=VALUE pairs separated by ";"');
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return args;
}

/**
 * Reads and checks the CNI_* variables `command` needs (SPEC.md's table: ADD and CHECK need a
 * container ID, netns and ifname; DEL the container ID and ifname; GC and STATUS only the
 * command). Everything fails with code 4 naming the variable, before anything is touched.
 */
export function readCniEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = env.CNI_COMMAND;
  if (!command) throw invalid('CNI_COMMAND', undefined, '');
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw invalid('CNI_COMMAND', command, `is not one of ${COMMANDS.join(', ')}`);
  }
  const cmd = command as CniCommand;
  const perContainer = cmd === 'ADD' || cmd === 'CHECK' || cmd === 'DEL';
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  const netns = env.CNI_NETNS ?? '';
  if (perContainer) {
    if (!containerId) throw invalid('CNI_CONTAINERID', undefined, '');
    if (!CONTAINER_ID.test(containerId)) {
      throw invalid('CNI_CONTAINERID', containerId, 'must be letters, digits, "_", "." and "-", starting with a letter or digit');
    }
    if (!ifname) throw invalid('CNI_IFNAME', undefined, '');
    if (!validIfname(ifname)) throw invalid('CNI_IFNAME', ifname, `is not a valid interface name (1-${MAX_IFNAME_BYTES} bytes, no "/", ":" or spaces)`);
  }
  if (cmd === 'ADD' || cmd === 'CHECK') {
    if (!netns) throw invalid('CNI_NETNS', undefined, '');
    if (!netns.startsWith('/')) throw invalid('CNI_NETNS', netns, 'must be an absolute path');
  }
  return {
    command: cmd,
    containerId,
    netns,
    ifname,
    args: parseArgs(env.CNI_ARGS),
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
  };
}
