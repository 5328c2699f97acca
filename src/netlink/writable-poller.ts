import { NetlinkError } from './errors.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, EINTR, POLLIN, POLLOUT, closeFd, eventfd, pollAsync, readFd, writeFd } from './libc.js';

export type WaitOutcome = 'ready' | 'timeout' | 'aborted';

interface Waiter {
  readonly fd: number;
  /** Settles the wait once (later calls do nothing): with an outcome, or rejected with `err`. */
  finish(outcome: WaitOutcome, err?: Error): void;
}

const POLLFD = 8;
/** After this many poll(2) failures in a row (not EINTR), every waiter is failed rather than spun on. */
const MAX_POLL_FAILURES = 5;

/**
 * Waits for non-blocking sockets to become writable (a connect(2) that answered EINPROGRESS has
 * finished, well or badly) without blocking the event loop and without a thread per socket.
 *
 * One poll(2) runs on a libuv worker thread (koffi `.async`) over every pending fd plus an eventfd.
 * Adding or dropping a waiter writes to the eventfd, so the poll returns and starts again with the
 * new set. So at most one worker thread is busy, and only while some connect is pending; when
 * none is, the eventfd is closed and nothing runs. Timeouts and aborts are plain JS timers.
 *
 * A fd dropped (and closed by its owner) while the poll runs may be reused by a new waiter before
 * the poll returns: results are matched to waiters by identity, never by fd number.
 */
class WritablePoller {
  private readonly waiters = new Set<Waiter>();
  private wakeFd = -1;
  private polling = false;
  private failures = 0;

  wait(fd: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<WaitOutcome> {
    if (signal?.aborted) return Promise.resolve('aborted');
    return new Promise<WaitOutcome>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => waiter.finish('aborted');
      const waiter: Waiter = {
        fd,
        finish: (outcome, err) => {
          if (!this.waiters.delete(waiter)) return;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.wake();
          if (err) reject(err);
          else resolve(outcome);
        },
      };
      try {
        this.waiters.add(waiter);
        timer = setTimeout(() => waiter.finish('timeout'), timeoutMs);
        signal?.addEventListener('abort', onAbort, { once: true });
        if (this.polling) this.wake();
        else this.cycle();
      } catch (err) {
        this.waiters.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Starts one poll over the current waiters, or stops when there are none. */
  private cycle(): void {
    if (this.waiters.size === 0) {
      this.polling = false;
      if (this.wakeFd >= 0) closeFd(this.wakeFd);
      this.wakeFd = -1;
      return;
    }
    const round = [...this.waiters];
    try {
      if (this.wakeFd < 0) this.wakeFd = eventfd(EFD_CLOEXEC | EFD_NONBLOCK);
    } catch (err) {
      // EMFILE and the like: without a way to wake a poll, do not start one.
      this.polling = false;
      this.failAll(round, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    const fds = Buffer.alloc(POLLFD * (round.length + 1));
    fds.writeInt32LE(this.wakeFd, 0);
    fds.writeInt16LE(POLLIN, 4);
    round.forEach((w, i) => {
      fds.writeInt32LE(w.fd, POLLFD * (i + 1));
      fds.writeInt16LE(POLLOUT, POLLFD * (i + 1) + 4);
    });
    this.polling = true;
    try {
      pollAsync(fds, round.length + 1, -1, (rc, errno) => this.onPolled(round, fds, rc, errno));
    } catch (err) {
      // koffi's queue of async calls is full (max_async_calls): nothing runs, so fail these waiters.
      this.polling = false;
      this.failAll(round, err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onPolled(round: readonly Waiter[], fds: Buffer, rc: number, errno: number): void {
    // The poll has returned: waiters finished below need not wake it (cycle() starts the next one).
    this.polling = false;
    this.drainWake();
    if (rc < 0 && errno !== EINTR) {
      if (++this.failures >= MAX_POLL_FAILURES) {
        this.failures = 0;
        this.failAll(round, new NetlinkError({ op: 'poll', errno: errno || 22 }, 'waiting for TCP connects'));
      }
    } else {
      this.failures = 0;
    }
    for (let i = 0; rc > 0 && i < round.length; i++) {
      if (fds.readInt16LE(POLLFD * (i + 1) + 6) !== 0) round[i]!.finish('ready');
    }
    this.cycle();
  }

  private failAll(round: readonly Waiter[], err: Error): void {
    for (const w of round) w.finish('ready', err);
  }

  /** Makes the running poll return. Never throws: it runs from timers and abort listeners. */
  private wake(): void {
    if (!this.polling || this.wakeFd < 0) return;
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    // Only EAGAIN (counter near 2^64: the poll is being woken anyway) or EBADF (a bug) can fail.
    writeFd(this.wakeFd, one);
  }

  private drainWake(): void {
    if (this.wakeFd >= 0) readFd(this.wakeFd, Buffer.alloc(8));
  }
}

const poller = new WritablePoller();

/**
 * Resolves 'ready' when `fd` is writable or in error (check SO_ERROR then), 'timeout' after
 * `timeoutMs`, 'aborted' when `signal` fires; rejects only when poll(2) itself keeps failing.
 * The fd stays the caller's, who may close it as soon as the promise settles.
 */
export function waitWritable(fd: number, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
  return poller.wait(fd, timeoutMs, signal);
}
