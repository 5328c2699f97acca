import { EventEmitter } from 'node:events';
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError, TwillError } from '../core/errors.js';
import { peerCredentials, type PeerCredentials } from '../netlink/index.js';
import { agentFailureStdout } from './spec/agent-failure.js';
import { prepareSocketDirectory } from './socket-directory.js';

// The agent's end of the CNI "thick plugin" socket. The executable runtimes run as the twill plugin
// is a small C client (src/cni/shim/twill-cni.c): Node takes ~75 ms to start, once per pod
// operation, so the shim forwards the call to the running agent and replays the answer.
//
// Protocol, one call per connection:
//   request:  "TWILL-CNI/1\n", then each CNI_* variable as "NAME=VALUE\0", then "\0" (an empty
//             entry ends the list), then the raw stdin bytes until the client half-closes
//   response: the exit code (0..255) in ASCII decimal + "\n", then the stdout bytes until close;
//             or "-\n" alone: the agent declined the call before doing anything (it is stopping),
//             and the shim runs the plugin itself. Shims before this answer read it as a
//             malformed header, on which they too run the plugin themselves.
// Once the shim has sent a request, the agent may have acted on it, so the shim never runs the
// plugin itself after that (it would redo half a call): it reports the error instead.
//
// Access: the socket is created 0600 (umask, so it is never connectable with looser modes), in a
// directory only root may write, and each caller's credentials (SO_PEERCRED) are checked: root, or
// the one group the agent is told to trust.

export interface CniCall {
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: Buffer;
  /** The caller's process as the kernel recorded it at connect(2); absent in calls made in-process. */
  readonly caller?: PeerCredentials | undefined;
}

export interface CniReply {
  readonly exitCode: number;
  readonly stdout: string;
}

export type CniHandler = (call: CniCall) => Promise<CniReply>;

/** What the server reports after each call ('call' event). */
export interface CniCallEvent {
  /** CNI_COMMAND, or '' when the call had none. */
  readonly command: string;
  /** From the request's last byte to the reply handed to the socket. */
  readonly ms: number;
  readonly exitCode: number;
}

interface CniSocketServerEvents {
  /** A connection-level problem: a malformed request, a client gone before its reply, a timeout. */
  error: [err: Error];
  call: [event: CniCallEvent];
  /** A caller that may not use the socket was turned away (`refusals` counts them). */
  refused: [caller: PeerCredentials];
}

export interface CniSocketServerOptions {
  /** Largest request (framing, environment and stdin) accepted; default 16 MiB, as the shim's stdin limit. */
  readonly maxRequestBytes?: number;
  /** A group whose members may call besides root: the socket becomes 0660 and that group's. */
  readonly group?: number | undefined;
}

const MAGIC = Buffer.from('TWILL-CNI/1\n', 'latin1');
/** The answer that hands a call back to the shim unstarted. */
const DECLINED = '-\n';
const DEFAULT_MAX_REQUEST_BYTES = 16 << 20;
/** A client that stalls mid-request this long is dropped (the shim sends everything at once). */
const REQUEST_IDLE_MS = 30_000;

function cniErrorReply(msg: string): CniReply {
  return { exitCode: 1, stdout: agentFailureStdout(msg) };
}

function protocolError(reason: string): TwillError {
  return new TwillError('ECNI_PROTOCOL', reason);
}

/** Decodes a request; throws ECNI_PROTOCOL on any framing violation. */
function parseRequest(buf: Buffer): CniCall {
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw protocolError('request does not start with TWILL-CNI/1');
  }
  const env: Record<string, string> = {};
  let pos = MAGIC.length;
  for (;;) {
    const end = buf.indexOf(0, pos);
    if (end < 0) throw protocolError('environment list is not terminated by an empty entry');
    if (end === pos) break;
    const entry = buf.toString('utf8', pos, end);
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq);
    // Only CNI_* travels (the shim filters), so the handler can trust env to hold nothing else.
    if (eq < 0 || !name.startsWith('CNI_')) throw protocolError(`environment entry ${JSON.stringify(entry)} is not CNI_NAME=VALUE`);
    if (Object.hasOwn(env, name)) throw protocolError(`environment variable ${name} appears twice`);
    env[name] = entry.slice(eq + 1);
    pos = end + 1;
  }
  return { env, stdin: buf.subarray(pos + 1) };
}

function encodeRequest(call: CniCall): Buffer {
  const parts: Buffer[] = [MAGIC];
  for (const [name, value] of Object.entries(call.env)) {
    if (!/^CNI_[^=\0]*$/.test(name)) throw new InvalidArgumentError('CNI variable name', name, 'must start with CNI_ and contain no "=" or NUL');
    if (value.includes('\0')) throw new InvalidArgumentError(`value of ${name}`, value, 'must not contain NUL');
    parts.push(Buffer.from(`${name}=${value}\0`, 'utf8'));
  }
  parts.push(Buffer.alloc(1), call.stdin);
  return Buffer.concat(parts);
}

function parseReply(buf: Buffer): CniReply {
  if (buf.toString('latin1', 0, DECLINED.length) === DECLINED) throw new TwillError('ECNI_DECLINED', 'the agent declined the call (it is stopping); run the plugin in-process');
  const nl = buf.indexOf(0x0a);
  const header = buf.toString('latin1', 0, Math.max(nl, 0));
  if (nl < 0 || !/^\d{1,3}$/.test(header) || Number(header) > 255) {
    throw protocolError(`malformed reply header ${JSON.stringify(buf.toString('latin1', 0, Math.min(buf.length, 16)))}`);
  }
  return { exitCode: Number(header), stdout: buf.toString('utf8', nl + 1) };
}

function validReply(reply: CniReply): boolean {
  return Number.isInteger(reply.exitCode) && reply.exitCode >= 0 && reply.exitCode <= 255 && typeof reply.stdout === 'string';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Serves CNI calls on a unix socket. Emits 'call' after each call and 'error' for connection-level
 * problems; it never logs. Without an 'error' listener those errors are dropped rather than
 * thrown: a misbehaving client must not take the agent down.
 */
export class CniSocketServer extends EventEmitter<CniSocketServerEvents> {
  /** Connections still receiving their request (close() drops them: no work has started). */
  private readonly receiving = new Set<net.Socket>();
  /** Calls whose handler runs or whose reply is being written (close() waits for them). */
  private readonly inFlight = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  private refusedCount = 0;

  private constructor(
    private readonly server: net.Server,
    readonly path: string,
    private readonly handler: CniHandler,
    private readonly maxRequestBytes: number,
    private readonly group: number | undefined,
  ) {
    super();
    server.on('connection', (socket) => this.accept(socket));
    server.on('error', (err) => this.report(err));
  }

  /** Callers turned away so far. */
  get refusals(): number {
    return this.refusedCount;
  }

  /**
   * Listens on `path`: makes its directory (root-only) if missing and refuses one others may write
   * to, replaces a stale socket left by a dead agent (never a regular file, nor a socket someone
   * still listens on), and creates the socket 0600 (0660 for `group`): only root, or that group,
   * may ask the agent to plumb pods.
   */
  static async listen(path: string, handler: CniHandler, opts: CniSocketServerOptions = {}): Promise<CniSocketServer> {
    const max = opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    if (!Number.isSafeInteger(max) || max <= 0) throw new InvalidArgumentError('maxRequestBytes', max, 'must be a positive integer');
    const group = opts.group;
    if (group !== undefined && (!Number.isInteger(group) || group < 0 || group > 0xfffffffe)) throw new InvalidArgumentError('CNI socket group', group, 'must be a numeric group ID');
    await prepareSocketDirectory(dirname(path), group);
    await removeStaleSocket(path);
    const server = net.createServer({ allowHalfOpen: true }); // the client half-closes, then reads the reply
    const self = new CniSocketServer(server, path, handler, max, group);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // bind(2) creates the socket file with the mode 0777 & ~umask; listen() binds before it
      // returns, so the umask is back before anything else in this process creates a file.
      const umask = process.umask(0o177);
      try {
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
    if (group !== undefined) {
      try {
        await chown(path, 0, group);
        await chmod(path, 0o660);
      } catch (err) {
        await self.close();
        throw err;
      }
    }
    return self;
  }

  /**
   * Stops listening, hands requests still arriving back to their shims (which then run the plugin
   * themselves: nothing was started), waits for calls in progress, removes the socket.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const socket of this.receiving) decline(socket);
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await closed;
      await removeSocketFile(this.path);
    })();
    return this.closing;
  }

  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** The caller's credentials when it may call; undefined (after answering it) when it may not. */
  private admit(socket: net.Socket): PeerCredentials | undefined {
    let caller: PeerCredentials;
    try {
      caller = peerCredentials((socket as unknown as { _handle: { fd: number } })._handle.fd);
    } catch (err) {
      this.report(err as Error);
      socket.destroy();
      return undefined;
    }
    if (caller.uid === 0 || (this.group !== undefined && caller.gid === this.group)) return caller;
    this.refusedCount++;
    this.emit('refused', caller);
    // Answered at once; what the caller sends is read and dropped, so it sees the answer rather than a reset.
    socket.resume();
    socket.on('error', () => undefined);
    socket.setTimeout(REQUEST_IDLE_MS, () => socket.destroy());
    socket.end(`1\n${agentFailureStdout(`twill: permission denied: uid ${caller.uid} gid ${caller.gid} may not use ${this.path} (root${this.group === undefined ? '' : ` or group ${this.group}`} only)`)}`);
    return undefined;
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      decline(socket);
      return;
    }
    const caller = this.admit(socket);
    if (!caller) return;
    const chunks: Buffer[] = [];
    let size = 0;
    this.receiving.add(socket);
    socket.setTimeout(REQUEST_IDLE_MS, () => {
      socket.destroy(new TwillError('ETIMEDOUT', `CNI client sent no data for ${REQUEST_IDLE_MS} ms`));
    });
    socket.on('data', (chunk: Buffer) => {
      // Past the limit the rest is read and discarded, so the client still gets its error reply
      // (replying early would reset a client that is still writing).
      size += chunk.length;
      if (size <= this.maxRequestBytes) chunks.push(chunk);
      else chunks.length = 0;
    });
    socket.on('error', (err) => this.report(err));
    socket.on('close', () => this.receiving.delete(socket));
    socket.on('end', () => {
      this.receiving.delete(socket);
      socket.setTimeout(0);
      // Nothing sent: a liveness probe (listen() of a second agent) or a shim that gave up before
      // sending (stdin over its limit). Not a call, and nobody is reading a reply.
      if (size === 0) {
        socket.destroy();
        return;
      }
      const call = this.serve(socket, size <= this.maxRequestBytes ? Buffer.concat(chunks, size) : undefined, size, caller);
      this.inFlight.add(call);
      void call.finally(() => this.inFlight.delete(call));
    });
  }

  private async serve(socket: net.Socket, request: Buffer | undefined, size: number, caller: PeerCredentials): Promise<void> {
    const started = performance.now();
    let call: CniCall | undefined;
    try {
      if (request === undefined) throw protocolError(`request of ${size} bytes exceeds the limit of ${this.maxRequestBytes}`);
      call = { ...parseRequest(request), caller };
    } catch (err) {
      this.report(err as Error);
      return send(socket, cniErrorReply(`twill: malformed CNI request: ${errorMessage(err)}`));
    }
    let reply: CniReply;
    try {
      reply = await this.handler(call);
      if (!validReply(reply)) reply = cniErrorReply(`twill: CNI handler returned an invalid reply (exit code ${String(reply.exitCode)})`);
    } catch (err) {
      reply = cniErrorReply(errorMessage(err));
    }
    await send(socket, reply);
    this.emit('call', { command: call.env['CNI_COMMAND'] ?? '', ms: performance.now() - started, exitCode: reply.exitCode });
  }
}

/** Hands an unstarted call back to the shim ("-\n") and drops what it still sends. */
function decline(socket: net.Socket): void {
  socket.setTimeout(0);
  socket.removeAllListeners('data');
  socket.removeAllListeners('end');
  socket.on('error', () => undefined);
  socket.resume();
  socket.end(DECLINED);
}

/** Writes the reply and ends the connection; resolves once it is flushed or the client is gone. */
function send(socket: net.Socket, reply: CniReply): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
    socket.end(Buffer.from(`${reply.exitCode}\n${reply.stdout}`, 'utf8'), () => resolve());
  });
}

/** Removes a socket file left by a dead agent. Refuses a non-socket and a socket with a listener. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new TwillError('EEXIST', `${path} exists and is not a socket; not removing it`);
  const live = await new Promise<boolean>((resolve, reject) => {
    const probe = net.createConnection({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve(false);
      else reject(err);
    });
  });
  if (live) throw new TwillError('EADDRINUSE', `another process is listening on ${path}`);
  await removeSocketFile(path);
}

async function removeSocketFile(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSocket()) await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Client side of the same protocol (used by tests and benchmarks, and by nothing in production). */
export function callCniSocket(path: string, call: CniCall, timeoutMs = 30_000): Promise<CniReply> {
  return new Promise((resolve, reject) => {
    const request = encodeRequest(call); // a throw here rejects
    const chunks: Buffer[] = [];
    const socket = net.createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TwillError('ETIMEDOUT', `no reply from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.end(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(parseReply(Buffer.concat(chunks)));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}
