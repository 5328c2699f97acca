import { readFileSync, writeFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { NetlinkError } from './errors.js';
import { runInNetns } from './netns.js';

/**
 * Network sysctls live per namespace: /proc/sys/net resolves to the namespace of the thread that
 * opens the file. So the open (and the write) happens inside `runInNetns`, synchronously.
 *
 * Keys are "net.ipv4.ip_forward" or, when a part contains a dot (an interface such as twill.1),
 * the slash form "net/ipv4/conf/twill.1/forwarding".
 */
export function sysctlPath(key: string): string {
  if (typeof key !== 'string' || !/^net[./]/.test(key) || key.includes('..') || /\s/.test(key)) {
    throw new InvalidArgumentError('sysctl key', key, 'must name a network sysctl such as net.ipv4.ip_forward');
  }
  return `/proc/sys/${key.includes('/') ? key : key.replaceAll('.', '/')}`;
}

function inNamespace<T>(netnsPath: string | undefined, fn: () => T): T {
  return netnsPath === undefined ? fn() : runInNetns(netnsPath, fn);
}

export function readSysctl(key: string, netnsPath?: string): string {
  const path = sysctlPath(key);
  return inNamespace(netnsPath, () => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch (err) {
      throw new NetlinkError({ op: 'sysctl.read', errno: Math.abs((err as NodeJS.ErrnoException).errno ?? 2), target: key });
    }
  });
}

export function writeSysctl(key: string, value: string | number, netnsPath?: string): void {
  const path = sysctlPath(key);
  inNamespace(netnsPath, () => {
    try {
      writeFileSync(path, String(value));
    } catch (err) {
      throw new NetlinkError({ op: 'sysctl.write', errno: Math.abs((err as NodeJS.ErrnoException).errno ?? 2), target: `${key}=${value}` });
    }
  });
}
