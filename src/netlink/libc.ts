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
const getsockoptFn = libc.func('int getsockopt(int fd, int level, int name, void *value, void *len)');
const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const bindFn = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const connectFn = libc.func('int connect(int fd, const void *addr, uint32_t len)');
const listenFn = libc.func('int listen(int fd, int backlog)');
const closeFn = libc.func('int close(int fd)');
const eventfdFn = libc.func('int eventfd(unsigned int initval, int flags)');
const writeFn = libc.func('long write(int fd, const void *buf, unsigned long count)');
const readFn = libc.func('long read(int fd, void *buf, unsigned long count)');
const pollFn = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const ifNameToIndexFn = libc.func('unsigned int if_nametoindex(const char *name)');
const exitFn = libc.func('void _exit(int status)');

export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_SHARED = 1 << 20;
export const MNT_DETACH = 2;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;
export const NETLINK_CAP_ACK = 10;
/** linux/netlink.h: overruns are counted, not reported as ENOBUFS on the next recvmsg. */
export const NETLINK_NO_ENOBUFS = 5;
/** asm-generic/socket.h and linux/sock_diag.h: the socket's memory counters, drops at index 8. */
export const SO_MEMINFO = 55;
export const SK_MEMINFO_VARS = 9;
export const SK_MEMINFO_DROPS = 8;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;
export const SO_SNDBUFFORCE = 32;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_PEERCRED = 17;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const IPPROTO_IP = 0;
export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;
/** linux/in.h */
export const IP_TTL = 2;
export const IP_MINTTL = 21;
/** linux/in6.h */
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MINHOPCOUNT = 73;
/** linux/tcp.h */
export const TCP_MD5SIG = 14;
export const TCP_MD5SIG_EXT = 32;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const EINPROGRESS = 115;
export const EINTR = 4;

function check(rc: number, op: string, target?: string): number {
  if (rc === -1) throw new NetlinkError({ op, errno: koffi.errno(), target });
  return rc;
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

export function setsockoptBuffer(fd: number, level: number, name: number, value: Buffer, op = 'setsockopt', target?: string): void {
  check(setsockoptFn(fd, level, name, value, value.length) as number, op, target);
}

/** getsockopt(2) of a `size`-byte option value; the value as the kernel filled it in. */
export function getsockoptBuffer(fd: number, level: number, name: number, size: number, op = 'getsockopt'): Buffer {
  const value = Buffer.alloc(size);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(size);
  check(getsockoptFn(fd, level, name, value, len) as number, op);
  return value;
}

export function getsockoptInt(fd: number, level: number, name: number, op = 'getsockopt'): number {
  return getsockoptBuffer(fd, level, name, 4, op).readInt32LE();
}

/** socket(2) in the calling thread's network namespace; returns the new fd. */
export function socket(domain: number, type: number, protocol: number): number {
  return check(socketFn(domain, type, protocol) as number, 'socket');
}

export function bind(fd: number, addr: Buffer, target?: string): void {
  check(bindFn(fd, addr, addr.length) as number, 'bind', target);
}

/** connect(2); returns 0 when connected at once, or the errno it failed with (EINPROGRESS on a non-blocking socket). */
export function connectErrno(fd: number, addr: Buffer): number {
  return (connectFn(fd, addr, addr.length) as number) === -1 ? koffi.errno() : 0;
}

export function listen(fd: number, backlog: number, target?: string): void {
  check(listenFn(fd, backlog) as number, 'listen', target);
}

/** close(2) for an fd this layer created and still owns; errors are not reported (the fd is gone either way on Linux). */
export function closeFd(fd: number): void {
  closeFn(fd);
}

export function eventfd(flags: number): number {
  return check(eventfdFn(0, flags) as number, 'eventfd');
}

/** write(2); returns the byte count or -errno (callers decide whether EAGAIN matters). */
export function writeFd(fd: number, buf: Buffer): number {
  const n = Number(writeFn(fd, buf, buf.length));
  return n === -1 ? -koffi.errno() : n;
}

/** read(2); returns the byte count or -errno. */
export function readFd(fd: number, buf: Buffer): number {
  const n = Number(readFn(fd, buf, buf.length));
  return n === -1 ? -koffi.errno() : n;
}

/**
 * poll(2) on a libuv worker thread (koffi `.async`): `fds` is an array of struct pollfd (8 bytes
 * each) whose revents the call fills in. `done` gets the result and errno on the main thread.
 */
export function pollAsync(fds: Buffer, count: number, timeoutMs: number, done: (rc: number, errno: number) => void): void {
  pollFn.async(fds, count, timeoutMs, (err: unknown, rc: number) => {
    if (err) {
      done(-1, 0);
      return;
    }
    done(rc, rc === -1 ? koffi.errno() : 0);
  });
}

/** if_nametoindex(3) in the calling thread's network namespace; ENODEV if there is no such interface. */
export function ifNameToIndex(name: string): number {
  const index = ifNameToIndexFn(name) as number;
  if (index === 0) throw new NetlinkError({ op: 'if_nametoindex', errno: koffi.errno() || 19, target: name });
  return index;
}

/**
 * _exit(2): ends the process at once, every thread with it. process.exit() first joins the worker
 * threads, so a thread stuck in a system call (a FIFO opened without O_NONBLOCK, a hung file
 * system) would make it wait forever.
 */
export function exitNow(code: number): never {
  exitFn(code);
  throw new Error('_exit returned');
}
