import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CniSocketServer, type CniCall, type CniHandler } from '../../src/cni/agent-socket.js';

// The C shim (src/cni/shim/twill-cni.c) against a CniSocketServer in this process, and its
// fallback to a stand-in for the Node plugin. The test compiles the shim from the source it sees
// (scripts/build-shim.mjs, into a temp dir), so it never tests a stale build in dist/ and needs
// none: only a C compiler, which `npm run build` needs too.

const SHIM_DIR = mkdtempSync(join(tmpdir(), 'twill-shim-build-'));
const SHIM = join(SHIM_DIR, 'twill');

function compileShim(): void {
  const script = fileURLToPath(new URL('../../scripts/build-shim.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, '--output', SHIM], { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot compile the CNI shim (a C compiler is needed: apt-get install gcc libc6-dev): ${r.stderr}${r.stdout}`);
}

/** Stands in for dist/src/cni/main.js: echoes what it got, exits 3. */
const FALLBACK_SCRIPT = `
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify({
    fallback: true,
    command: process.env.CNI_COMMAND ?? null,
    args: process.argv.slice(2),
    stdin: Buffer.concat(chunks).toString('base64'),
  }));
  process.exitCode = 3;
});
`;

/**
 * Stands in for a Node plugin stuck past its deadline: an ADD never ends; a DEL (the shim's
 * rollback) appends its command and stdin to $SHIM_LOG and exits 0.
 */
const STUCK_SCRIPT = `
const fs = require('node:fs');
if (process.env.CNI_COMMAND === 'ADD') setInterval(() => {}, 1000);
else fs.appendFileSync(process.env.SHIM_LOG, process.env.CNI_COMMAND + ' ' + fs.readFileSync(0, 'utf8') + '\\n');
`;

interface ShimResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

function runShim(env: Record<string, string>, stdin: Buffer, args: string[] = []): Promise<ShimResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(SHIM, args, { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => {}); // EPIPE when the program (--version) never reads stdin
    child.stdin.end(stdin);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
  });
}

function parseFallback(stdout: Buffer): { fallback: boolean; command: string | null; args: string[]; stdin: Buffer } {
  const got = JSON.parse(stdout.toString()) as { fallback: boolean; command: string | null; args: string[]; stdin: string };
  return { ...got, stdin: Buffer.from(got.stdin, 'base64') };
}

describe('twill CNI shim', () => {
  beforeAll(compileShim, 60_000);
  afterAll(() => rmSync(SHIM_DIR, { recursive: true, force: true }));
  let dir: string;
  let socketPath: string;
  let fallbackEnv: Record<string, string>;
  const servers: CniSocketServer[] = [];
  const rawServers: net.Server[] = [];
  const rawSockets = new Set<net.Socket>();

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'twill-cni-shim-'));
    socketPath = join(dir, 'cni.sock');
    const script = join(dir, 'fallback.js');
    await writeFile(script, FALLBACK_SCRIPT);
    fallbackEnv = { TWILL_CNI_SOCKET: socketPath, TWILL_CNI_NODE_MAIN: script };
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    for (const socket of rawSockets) socket.destroy();
    rawSockets.clear();
    await Promise.all(rawServers.splice(0).map((s) => new Promise((r) => s.close(r))));
    await rm(dir, { recursive: true, force: true });
  });

  async function serve(handler: CniHandler): Promise<void> {
    servers.push(await CniSocketServer.listen(socketPath, handler));
  }

  /** A server at the socket path that is not twilld: it runs `onConnection` on each client. */
  async function serveRaw(onConnection: (socket: net.Socket) => void): Promise<void> {
    // As twilld: the client half-closes, then reads.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      rawSockets.add(socket);
      onConnection(socket);
    });
    rawServers.push(server);
    await new Promise<void>((r) => server.listen(socketPath, r));
  }

  it.each([0, 1, 7, 255])('replays the agent stdout and exit code %i exactly', async (exitCode) => {
    const stdout = `{"cniVersion":"1.1.0","msg":"ünïcode ✓"}\nsecond line without newline`;
    await serve(async () => ({ exitCode, stdout }));
    const res = await runShim({ ...fallbackEnv, CNI_COMMAND: 'ADD' }, Buffer.from('{}'));
    expect(res.code).toBe(exitCode);
    expect(res.stdout.equals(Buffer.from(stdout))).toBe(true);
    expect(res.stderr).toBe('');
  });

  it('forwards only CNI_* variables, and stdin byte for byte', async () => {
    const calls: CniCall[] = [];
    await serve(async (call) => {
      calls.push(call);
      return { exitCode: 0, stdout: '' };
    });
    const stdin = Buffer.alloc(300_000);
    for (let i = 0; i < stdin.length; i++) stdin[i] = (i * 7) & 0xff;
    const cni = {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'abc123',
      CNI_NETNS: '/var/run/netns/x',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=a=b',
      CNI_PATH: '/opt/cni/bin',
    };
    const res = await runShim({ ...fallbackEnv, ...cni, UNRELATED_VAR: 'secret', XCNI_NOPE: '1' }, stdin);
    expect(res.code).toBe(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.env).toEqual(cni);
    expect(calls[0]?.stdin.equals(stdin)).toBe(true);
  });

  it('runs the Node plugin when no agent listens, with stdin and environment untouched', async () => {
    const stdin = Buffer.from('{"cniVersion":"1.1.0","name":"twill","type":"twill"}');
    const res = await runShim({ ...fallbackEnv, TWILL_CNI_SOCKET: join(dir, 'missing.sock'), CNI_COMMAND: 'DEL' }, stdin);
    expect(res.code).toBe(3);
    const got = parseFallback(res.stdout);
    expect(got).toMatchObject({ fallback: true, command: 'DEL', args: [] });
    expect(got.stdin.equals(stdin)).toBe(true);
  });

  it('runs the Node plugin with the full stdin when the agent drops the connection before taking the request', async () => {
    await serveRaw((socket) => socket.destroy());
    // More than a socket buffer: the agent cannot have had it all, so it cannot have started.
    const stdin = Buffer.alloc(1 << 20, 'x');
    const res = await runShim({ ...fallbackEnv, CNI_COMMAND: 'ADD' }, stdin);
    expect(res.code).toBe(3);
    const got = parseFallback(res.stdout);
    expect(got).toMatchObject({ fallback: true, command: 'ADD' });
    expect(got.stdin.equals(stdin)).toBe(true);
  });

  it('runs the Node plugin when the agent declines the call unstarted ("-")', async () => {
    await serveRaw((socket) => {
      socket.resume();
      socket.on('end', () => socket.end('-\n'));
    });
    const stdin = Buffer.from('{"cniVersion":"1.0.0"}');
    const res = await runShim({ ...fallbackEnv, CNI_COMMAND: 'ADD' }, stdin);
    expect(res.code).toBe(3);
    expect(parseFallback(res.stdout)).toMatchObject({ fallback: true, command: 'ADD', stdin });
  });

  // Once the agent has the request it may have started the call: running it again here would
  // work on half an ADD (the double work of issue 13, item 8). The runtime gets an error instead.
  it.each([
    ['closes the connection without answering', (socket: net.Socket) => socket.on('end', () => socket.destroy()), /closed the connection without answering/],
    ['answers with a malformed header', (socket: net.Socket) => socket.on('end', () => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')), /malformed/],
  ])('reports code 11 and runs nothing when the agent takes the request and %s', async (_what, behave, msg) => {
    await serveRaw((socket) => {
      socket.resume();
      behave(socket);
    });
    const res = await runShim({ ...fallbackEnv, CNI_COMMAND: 'ADD' }, Buffer.from('{"cniVersion":"0.4.0","name":"x"}'));
    expect(res.code).toBe(1);
    const error = JSON.parse(res.stdout.toString()) as { cniVersion: string; code: number; msg: string };
    expect(error).toMatchObject({ cniVersion: '0.4.0', code: 11, msg: expect.stringMatching(msg) as unknown });
    expect(error.msg).toMatch(/not run again here/);
  });

  it('gives up on an agent that takes the request and never answers (TWILL_CNI_AGENT_TIMEOUT)', async () => {
    await serveRaw((socket) => socket.resume());
    const started = Date.now();
    const res = await runShim({ ...fallbackEnv, CNI_COMMAND: 'DEL', TWILL_CNI_AGENT_TIMEOUT: '1' }, Buffer.from('{}'));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout.toString())).toMatchObject({ cniVersion: '1.1.0', code: 11, msg: expect.stringMatching(/did not answer within 1 s/) as unknown });
  });

  it('stops a Node plugin that outlives its deadline (TWILL_CNI_TIMEOUT) and rolls its ADD back with a DEL', async () => {
    const script = join(dir, 'stuck.js');
    const log = join(dir, 'shim.log');
    await writeFile(script, STUCK_SCRIPT);
    const stdin = Buffer.from('{"cniVersion":"1.0.0","name":"net"}');
    const started = Date.now();
    const res = await runShim({
      TWILL_CNI_SOCKET: join(dir, 'missing.sock'), TWILL_CNI_NODE_MAIN: script, TWILL_CNI_TIMEOUT: '1', SHIM_LOG: log, CNI_COMMAND: 'ADD',
    }, stdin);
    // Killed at the deadline plus three undo windows of min(5 s, 1 s): about 4 s.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout.toString())).toMatchObject({
      cniVersion: '1.0.0', code: 11, msg: expect.stringMatching(/did not finish ADD within 1 s .*undone/) as unknown,
    });
    expect(await readFile(log, 'utf8')).toBe(`DEL ${stdin.toString()}\n`);
  });

  it('hands command-line arguments (--version) to the Node plugin without asking the agent', async () => {
    let calls = 0;
    await serve(async () => {
      calls++;
      return { exitCode: 0, stdout: 'agent' };
    });
    const res = await runShim(fallbackEnv, Buffer.alloc(0), ['--version']);
    expect(res.code).toBe(3);
    expect(parseFallback(res.stdout)).toMatchObject({ fallback: true, args: ['--version'] });
    expect(calls).toBe(0);
  });
});
