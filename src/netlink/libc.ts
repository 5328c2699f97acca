import koffi from 'koffi';
import { NetlinkError } from './errors.js';

/**
 * The few libc calls Node cannot make by itself, through koffi. Each wrapper throws a
 * NetlinkError carrying errno on failure. All of them act on the calling thread, which for
 * Twill is always the main JS thread: namespace switches are per thread (setns(2)).
 */
const libc = koffi.load('libc.so.6');

const setnsFn = libc.func('int setns(int fd, int nstype)');
const unshareFn = libc.func('int unshare(int flags)');
const mountFn = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)');
const umount2Fn = libc.func('int umount2(const char *target, int flags)');
const setsockoptFn = libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');

export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_SHARED = 1 << 20;
export const MNT_DETACH = 2;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;
export const NETLINK_CAP_ACK = 10;
export const SOL_SOCKET = 1;
export const SO_RCVBUFFORCE = 33;
export const SO_SNDBUFFORCE = 32;

function check(rc: number, op: string, target?: string): void {
  if (rc === -1) throw new NetlinkError({ op, errno: koffi.errno(), target });
}

export function setns(fd: number, nstype: number, target?: string): void {
  check(setnsFn(fd, nstype) as number, 'setns', target);
}

export function unshare(flags: number): void {
  check(unshareFn(flags) as number, 'unshare');
}

export function mount(source: string, target: string, fstype: string | null, flags: number): void {
  check(mountFn(source, target, fstype, flags, null) as number, 'mount', target);
}

export function umount2(target: string, flags: number): void {
  check(umount2Fn(target, flags) as number, 'umount', target);
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(value);
  check(setsockoptFn(fd, level, name, buf, 4) as number, 'setsockopt');
}
