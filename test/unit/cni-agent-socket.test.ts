import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { callCniSocket, CniSocketServer, type CniCall, type CniCallEvent, type CniHandler } from '../../src/cni/agent-socket.js';

/** Sends raw bytes, half-closes, and returns everything the server answered. */
async function rawExchange(path: string, bytes: Buffer): Promise<string> {
  const socket = net.createConnection({ path });
  await once(socket, 'connect');
  socket.end(bytes);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A socket file with no listener, as a SIGKILLed agent leaves it. */
async function makeStaleSocket(path: string): Promise<void> {
  const script = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  await once(child, 'exit');
  expect((await lstat(path)).isSocket()).toBe(true);
}

describe('CniSocketServer and callCniSocket', () => {
  let dir: string;
  let path: string;
  const servers: CniSocketServer[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'twill-cni-sock-'));
    path = join(dir, 'run', 'cni.sock'); // run/ does not exist: listen creates it
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  async function start(handler: CniHandler, opts?: { maxRequestBytes?: number; group?: number }): Promise<CniSocketServer> {
    const server = await CniSocketServer.listen(path, handler, opts);
    servers.push(server);
    return server;
  }

  /** Echoes the call back as JSON so a test can see exactly what arrived. */
  const echo: CniHandler = async (call) => ({
    exitCode: Number(call.env['CNI_EXIT'] ?? 0),
    stdout: JSON.stringify({ env: call.env, stdin: call.stdin.toString('base64') }),
  });

  function decode(stdout: string): { env: Record<string, string>; stdin: Buffer } {
    const parsed = JSON.parse(stdout) as { env: Record<string, string>; stdin: string };
    return { env: parsed.env, stdin: Buffer.from(parsed.stdin, 'base64') };
  }

  it('round-trips env, stdin, stdout and exit code; the socket is 0600 in a root-only (0700) directory', async () => {
    const events: CniCallEvent[] = [];
    const server = await start(echo);
    server.on('call', (e) => events.push(e));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'run'))).mode & 0o777).toBe(0o700);
    const call: CniCall = {
      env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'K8S_POD_NAME=a=b;IgnoreUnknown=1', CNI_PATH: 'line1\nline2', CNI_EXIT: '7' },
      stdin: Buffer.from('{"cniVersion":"1.1.0","name":"twill"}\n'),
    };
    const reply = await callCniSocket(path, call);
    expect(reply.exitCode).toBe(7);
    const got = decode(reply.stdout);
    expect(got.env).toEqual(call.env);
    expect(got.stdin.equals(call.stdin)).toBe(true);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ command: 'ADD', exitCode: 7 });
    expect(events[0]?.ms).toBeGreaterThanOrEqual(0);
  });

  it('passes an empty stdin and an empty environment', async () => {
    await start(echo);
    const got = decode((await callCniSocket(path, { env: {}, stdin: Buffer.alloc(0) })).stdout);
    expect(got.env).toEqual({});
    expect(got.stdin.length).toBe(0);
  });

  it('passes a 1 MiB stdin byte for byte', async () => {
    await start(echo);
    const stdin = Buffer.alloc(1 << 20);
    for (let i = 0; i < stdin.length; i++) stdin[i] = (i * 131) & 0xff; // NUL bytes included
    const got = decode((await callCniSocket(path, { env: { CNI_COMMAND: 'ADD' }, stdin })).stdout);
    expect(got.stdin.equals(stdin)).toBe(true);
  });

  it('answers a malformed request with a CNI error and reports it, without calling the handler', async () => {
    let calls = 0;
    const server = await start(async () => {
      calls++;
      return { exitCode: 0, stdout: '' };
    });
    const errors: Error[] = [];
    server.on('error', (err) => errors.push(err));
    const bad = [
      Buffer.from('GET / HTTP/1.0\r\n\r\n'),
      Buffer.from('TWILL-CNI/1\nCNI_COMMAND=ADD\0'), // list not terminated
      Buffer.from('TWILL-CNI/1\nPATH=/bin\0\0{}'), // not a CNI_ variable
      Buffer.from('TWILL-CNI/1\nCNI_COMMAND\0\0{}'), // no "="
      Buffer.from('TWILL-CNI/1\nCNI_A=1\0CNI_A=2\0\0'), // twice
    ];
    for (const bytes of bad) {
      const answer = await rawExchange(path, bytes);
      expect(answer.startsWith('1\n')).toBe(true);
      expect(JSON.parse(answer.slice(2))).toMatchObject({ cniVersion: '1.1.0', code: 100 });
    }
    expect(calls).toBe(0);
    expect(errors).toHaveLength(bad.length);
    // The server still works afterwards.
    expect((await callCniSocket(path, { env: {}, stdin: Buffer.alloc(0) })).exitCode).toBe(0);
  });

  it('drops a connection that sends nothing (a probe) without a call or an error', async () => {
    let calls = 0;
    const server = await start(async () => {
      calls++;
      return { exitCode: 0, stdout: '' };
    });
    const errors: Error[] = [];
    server.on('error', (err) => errors.push(err));
    expect(await rawExchange(path, Buffer.alloc(0))).toBe('');
    expect(calls).toBe(0);
    expect(errors).toEqual([]);
  });

  it('answers a request over maxRequestBytes with a CNI error', async () => {
    await start(echo, { maxRequestBytes: 1024 });
    const reply = await callCniSocket(path, { env: { CNI_COMMAND: 'ADD' }, stdin: Buffer.alloc(4096, 0x20) });
    expect(reply.exitCode).toBe(1);
    expect(JSON.parse(reply.stdout)).toMatchObject({ code: 100, msg: expect.stringContaining('exceeds the limit of 1024') as unknown });
  });

  it('turns a throwing handler into exit code 1 with a CNI error carrying its message', async () => {
    const events: CniCallEvent[] = [];
    const server = await start(async () => {
      throw new Error('bridge cni0 is down');
    });
    server.on('call', (e) => events.push(e));
    const reply = await callCniSocket(path, { env: { CNI_COMMAND: 'DEL' }, stdin: Buffer.from('{}') });
    expect(reply.exitCode).toBe(1);
    expect(JSON.parse(reply.stdout)).toEqual({ cniVersion: '1.1.0', code: 100, msg: 'bridge cni0 is down' });
    expect(events[0]).toMatchObject({ command: 'DEL', exitCode: 1 });
  });

  it('serves 50 concurrent calls', async () => {
    await start(async (call) => {
      await new Promise((r) => setTimeout(r, 20)); // so that they really overlap
      return { exitCode: 0, stdout: `${call.env['CNI_CONTAINERID']}:${call.stdin.toString()}` };
    });
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => callCniSocket(path, { env: { CNI_CONTAINERID: `c${i}` }, stdin: Buffer.from(`in${i}`) })),
    );
    expect(replies.map((r) => r.stdout)).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}:in${i}`));
  });

  it('replaces a stale socket file', async () => {
    await makeStaleSocket(join(dir, 'cni.sock'));
    path = join(dir, 'cni.sock');
    await start(echo);
    expect((await callCniSocket(path, { env: {}, stdin: Buffer.alloc(0) })).exitCode).toBe(0);
  });

  it('refuses a socket another server still listens on', async () => {
    await start(echo);
    await expect(CniSocketServer.listen(path, echo)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect((await callCniSocket(path, { env: {}, stdin: Buffer.alloc(0) })).exitCode).toBe(0);
  });

  it('does not delete a regular file at the path', async () => {
    path = join(dir, 'cni.sock');
    await writeFile(path, 'precious');
    await expect(CniSocketServer.listen(path, echo)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(path, 'utf8')).toBe('precious');
  });

  it('close() waits for calls in progress, then removes the socket', async () => {
    let entered = (): void => {};
    let release = (): void => {};
    const inHandler = new Promise<void>((r) => (entered = r));
    const gate = new Promise<void>((r) => (release = r));
    const server = await CniSocketServer.listen(path, async () => {
      entered();
      await gate;
      return { exitCode: 0, stdout: 'done' };
    });
    const pending = callCniSocket(path, { env: {}, stdin: Buffer.alloc(0) });
    await inHandler;
    let closedYet = false;
    const closed = server.close().then(() => (closedYet = true));
    await new Promise((r) => setImmediate(r));
    expect(closedYet).toBe(false);
    release();
    expect((await pending).stdout).toBe('done');
    await closed;
    await expect(lstat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(callCniSocket(path, { env: {}, stdin: Buffer.alloc(0) })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a socket directory that others may write to (they could replace the socket)', async () => {
    await mkdir(join(dir, 'run'), { mode: 0o755 });
    await chmod(join(dir, 'run'), 0o775);
    await expect(CniSocketServer.listen(path, echo)).rejects.toThrow(/writable by its group \(mode 775\)/);
    await chmod(join(dir, 'run'), 0o757);
    await expect(CniSocketServer.listen(path, echo)).rejects.toThrow(/writable by everyone/);
    // Readable by others is fine: the socket's own mode and the caller check keep them out.
    await chmod(join(dir, 'run'), 0o755);
    await start(echo);
    expect((await callCniSocket(path, { env: {}, stdin: Buffer.alloc(0) })).exitCode).toBe(0);
  });

  it('hands each call its caller\'s credentials (SO_PEERCRED)', async () => {
    const callers: CniCall['caller'][] = [];
    await start(async (call) => {
      callers.push(call.caller);
      return { exitCode: 0, stdout: '' };
    });
    await callCniSocket(path, { env: { CNI_COMMAND: 'VERSION' }, stdin: Buffer.alloc(0) });
    expect(callers).toEqual([{ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() }]);
  });

  describe.skipIf(process.getuid?.() !== 0)('callers that are not root (needs root to run them)', () => {
    /** Runs a client as `uid`/`gid` that sends one request and prints the raw answer. */
    async function callAs(uid: number, gid: number): Promise<string> {
      const script = `const s = require('net').createConnection(${JSON.stringify(path)});
        const out = []; s.on('connect', () => s.end('TWILL-CNI/1\\nCNI_COMMAND=VERSION\\0\\0{}'));
        s.on('data', (c) => out.push(c)); s.on('error', (e) => { process.stdout.write('ERROR ' + e.code); });
        s.on('end', () => process.stdout.write(Buffer.concat(out)));`;
      const child = spawn(process.execPath, ['-e', script], { uid, gid, stdio: ['ignore', 'pipe', 'inherit'] });
      const out: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      await once(child, 'close');
      return Buffer.concat(out).toString();
    }

    it('refuses a caller that is neither root nor in the trusted group, and counts it', async () => {
      let calls = 0;
      const server = await start(async () => {
        calls++;
        return { exitCode: 0, stdout: 'served' };
      });
      const refused: unknown[] = [];
      server.on('refused', (caller) => refused.push(caller));
      // Even with the socket opened up by mistake, the caller check keeps others out.
      await chmod(dir, 0o755);
      await chmod(join(dir, 'run'), 0o755);
      await chmod(path, 0o666);
      const answer = await callAs(65534, 65534);
      expect(answer.startsWith('1\n')).toBe(true);
      expect(JSON.parse(answer.slice(2))).toMatchObject({ code: 100, msg: expect.stringMatching(/permission denied: uid 65534 gid 65534/) as unknown });
      expect(calls).toBe(0);
      expect(refused).toEqual([expect.objectContaining({ uid: 65534, gid: 65534 })]);
      expect(server.refusals).toBe(1);
    });

    it('lets the trusted group call through a 0660 socket of that group', async () => {
      await chmod(dir, 0o711);
      const server = await start(async () => ({ exitCode: 0, stdout: 'served' }), { group: 4242 });
      expect((await stat(path)).mode & 0o777).toBe(0o660);
      expect((await stat(path)).gid).toBe(4242);
      expect((await stat(join(dir, 'run'))).mode & 0o777).toBe(0o710);
      expect(await callAs(65534, 4242)).toBe('0\nserved');
      expect(server.refusals).toBe(0);
      expect(await callAs(65534, 65534)).toMatch(/^ERROR EACCES/);
    });
  });

  it('close() hands a request still arriving back to its client unstarted ("-")', async () => {
    let calls = 0;
    const server = await CniSocketServer.listen(path, async () => {
      calls++;
      return { exitCode: 0, stdout: '' };
    });
    const socket = net.createConnection({ path });
    await once(socket, 'connect');
    socket.write('TWILL-CNI/1\nCNI_COMMAND=ADD\0'); // the rest never comes
    const answer = (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of socket) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString();
    })();
    await new Promise((r) => setTimeout(r, 50));
    await server.close();
    expect(await answer).toBe('-\n');
    expect(calls).toBe(0);
  });

  it('the client rejects names that are not CNI_ variables', async () => {
    await start(echo);
    await expect(callCniSocket(path, { env: { PATH: '/bin' }, stdin: Buffer.alloc(0) })).rejects.toMatchObject({ code: 'EINVAL_ARG' });
  });
});
