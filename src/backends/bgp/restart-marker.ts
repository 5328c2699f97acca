import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Whether this start is a restart of the agent on a host that has not rebooted since it last
 * ran: then the kernel still forwards by the routes Twill wrote, and the speaker may say so to
 * its peers (RFC 4724 §3: Restart State and Forwarding State bits), which keep our routes until
 * we send them again. The marker in the state directory holds the kernel's boot id; a reboot
 * changes it.
 */
const MARKER = 'bgp-boot-id';
const BOOT_ID = '/proc/sys/kernel/random/boot_id';

async function bootId(): Promise<string> {
  return (await readFile(BOOT_ID, 'utf8').catch(() => '')).trim();
}

export async function restartedSinceBoot(stateDir: string): Promise<boolean> {
  const [current, previous] = await Promise.all([bootId(), readFile(join(stateDir, MARKER), 'utf8').catch(() => '')]);
  return current !== '' && previous.trim() === current;
}

/**
 * Records that the agent runs in this boot. Called once the agent has written its subnet file,
 * so the directory exists (the agent creates it); a failure only costs the next restart its
 * Restart State bit, so it is reported, not thrown.
 */
export async function markRunning(stateDir: string): Promise<Error | undefined> {
  const current = await bootId();
  if (current === '') return undefined;
  const path = join(stateDir, MARKER);
  try {
    // Written whole or not at all: a torn marker would read as "no restart", the safe side anyway.
    await writeFile(`${path}.tmp`, `${current}\n`);
    await rename(`${path}.tmp`, path);
    return undefined;
  } catch (err) {
    return err as Error;
  }
}
