/**
 * A real single-member etcd (Debian `etcd-server` 3.4, binary `etcd`; `etcdctl` from
 * `etcd-client`) for integration tests, on free loopback ports with a private data dir.
 *
 *   const etcd = await startEtcd();                 // healthy when this resolves
 *   await etcd.etcdctl(['put', '/coreos.com/network/config', '{"Network":"10.244.0.0/16"}']);
 *   await etcd.kill();                              // SIGKILL, data kept
 *   await etcd.restart();                           // same ports, same data
 *   await etcd.stop();                              // SIGTERM; removes the data dir unless keepData
 *
 * With TLS (see makeTestPki below):
 *
 *   const pki = await makeTestPki(tempDir('pki'));
 *   const etcd = await startEtcd({ tls: pki.etcdTls({ clientCertAuth: true }) });
 *   etcd.clientUrl  // https://127.0.0.1:<port>; etcdctl() passes --cacert/--cert/--key itself
 *
 * The instance is registered with a cleanup registry (default the global one) and its process
 * tracked for exit-time SIGKILL; its work dir (`<tmp>/twt-<owner>.<id>-etcd/`, holding `data/`
 * and `etcd.pid`) is removed at exit too, or by sweepStale() after a SIGKILL.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup, trackPath, untrackPath, type CleanupEntry, type CleanupRegistry } from './cleanup.js';
import { startDaemon, tail, describeExit, type Daemon } from './daemon.js';
import { commandAvailable, exec, run, type RunResult } from './exec.js';
import { randomId, tempDirName } from './names.js';

export interface EtcdTlsOptions {
  /** CA that signed the server certificate (and, with clientCertAuth, the client certificates). */
  readonly caFile: string;
  /** Server certificate and key; the certificate needs SANs for the listen address. */
  readonly certFile: string;
  readonly keyFile: string;
  /** Require client certificates signed by caFile (--client-cert-auth). */
  readonly clientCertAuth?: boolean | undefined;
  /** Client certificate/key used by etcdctl() and the health probe (required with clientCertAuth). */
  readonly clientCertFile?: string | undefined;
  readonly clientKeyFile?: string | undefined;
}

export interface EtcdOptions {
  /** Serve clients over TLS. */
  readonly tls?: EtcdTlsOptions | undefined;
  /** Leave the work dir (data) in place on stop() and at exit. */
  readonly keepData?: boolean | undefined;
  /** Run inside this test namespace (by name); the listen address must then exist there. */
  readonly netns?: string | undefined;
  /** Listen address; default 127.0.0.1. */
  readonly host?: string | undefined;
  /** Fixed ports; default: free ones picked on 127.0.0.1. */
  readonly clientPort?: number | undefined;
  readonly peerPort?: number | undefined;
  /** Member name; default "default". */
  readonly name?: string | undefined;
  /** More etcd flags, e.g. ['--auto-compaction-retention=1']. */
  readonly extraArgs?: readonly string[] | undefined;
  /** How long to wait for health; default 30 s. */
  readonly startTimeoutMs?: number | undefined;
  /** Registry that stops the instance; default the global one. */
  readonly registry?: CleanupRegistry | undefined;
  /** The etcd binary; default "etcd" (from PATH). */
  readonly binary?: string | undefined;
  /** Copy etcd's log to stderr (debugging). */
  readonly echo?: boolean | undefined;
}

export interface Etcd {
  /** "127.0.0.1:<port>": host and port only, as some clients want it. */
  readonly endpoint: string;
  /** "http://127.0.0.1:<port>" (https with TLS): what to give Twill or etcdctl. */
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** etcd's --data-dir. */
  readonly dataDir: string;
  /** Holds dataDir and etcd.pid. */
  readonly workDir: string;
  readonly tls: EtcdTlsOptions | undefined;
  /** Pid of the current etcd process, undefined when not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** The current process (replaced by restart()). */
  readonly daemon: Daemon | undefined;
  /** Runs `etcdctl --endpoints <clientUrl> [tls flags] <args>` with ETCDCTL_API=3; returns stdout. */
  etcdctl(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** Like etcdctl() but never throws: the whole result. */
  etcdctlResult(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** One probe of /health. */
  healthy(): Promise<boolean>;
  /** Polls /health until healthy; rejects with the log tail on timeout or if etcd exits. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL) and, for signals that end the process, waits for the exit.
   * SIGSTOP/SIGCONT just send (freeze/thaw a member to simulate a hang). Data stays.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops etcd if running (SIGTERM; SIGKILL after 10 s), starts it again on the same ports and data, waits for health. */
  restart(): Promise<void>;
  /** SIGTERM (SIGKILL after 10 s), then removes the work dir unless keepData. Idempotent. */
  stop(): Promise<void>;
  /** etcd's recent log output. */
  logs(): string;
}

const NON_FATAL = new Set<NodeJS.Signals>(['SIGSTOP', 'SIGCONT', 'SIGTSTP', 'SIGWINCH', 'SIGUSR1', 'SIGUSR2']);

/** A TCP port that was free on `host` a moment ago (listen on port 0, read it, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('freePort: no port assigned'))));
    });
  });
}

/** Whether `etcd` and `etcdctl` are installed (for describe.skipIf). */
export function etcdAvailable(): boolean {
  return commandAvailable('etcd') && commandAvailable('etcdctl');
}

/** Starts etcd and waits until it is healthy. */
export async function startEtcd(opts: EtcdOptions = {}): Promise<Etcd> {
  const server = new EtcdServer(opts);
  try {
    await server.start();
  } catch (err) {
    await server.stop().catch(() => undefined);
    throw err;
  }
  return server;
}

class EtcdServer implements Etcd {
  readonly host: string;
  clientPort = 0;
  peerPort = 0;
  readonly workDir: string;
  readonly dataDir: string;
  readonly tls: EtcdTlsOptions | undefined;
  daemon: Daemon | undefined;
  private readonly entry: CleanupEntry;
  private readonly token = `twt-${randomId(6)}`;
  private stopped: Promise<void> | undefined;
  private lastLogs = '';

  constructor(private readonly opts: EtcdOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.tls = opts.tls;
    if (this.tls?.clientCertAuth && (!this.tls.clientCertFile || !this.tls.clientKeyFile)) {
      throw new Error('startEtcd: tls.clientCertAuth needs tls.clientCertFile and tls.clientKeyFile for etcdctl and the health probe');
    }
    this.workDir = join(tmpdir(), tempDirName('etcd'));
    this.dataDir = join(this.workDir, 'data');
    mkdirSync(this.workDir, { mode: 0o700 });
    if (!opts.keepData) trackPath(this.workDir);
    this.entry = (opts.registry ?? cleanup).defer(`etcd ${this.workDir}`, () => this.stop(), { timeoutMs: 20_000 });
  }

  get endpoint(): string { return `${this.host}:${this.clientPort}`; }
  get clientUrl(): string { return `${this.tls ? 'https' : 'http'}://${this.endpoint}`; }
  get peerUrl(): string { return `http://${this.host}:${this.peerPort}`; }
  get pid(): number | undefined { return this.daemon?.running ? this.daemon.pid : undefined; }
  get running(): boolean { return this.daemon?.running ?? false; }

  logs(): string {
    return this.daemon?.output() ?? this.lastLogs;
  }

  private args(): string[] {
    const name = this.opts.name ?? 'default';
    const args = [
      `--name=${name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${name}=${this.peerUrl}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${this.token}`,
      '--logger=zap',
      '--log-outputs=stderr',
    ];
    if (this.tls) {
      args.push(`--cert-file=${this.tls.certFile}`, `--key-file=${this.tls.keyFile}`, `--trusted-ca-file=${this.tls.caFile}`);
      if (this.tls.clientCertAuth) args.push('--client-cert-auth');
    }
    return [...args, ...(this.opts.extraArgs ?? [])];
  }

  /** First start: picks ports (retrying if another process grabbed one meanwhile). */
  async start(): Promise<void> {
    const fixed = this.opts.clientPort !== undefined || this.opts.peerPort !== undefined;
    for (let attempt = 1; ; attempt++) {
      this.clientPort = this.opts.clientPort ?? await freePort();
      this.peerPort = this.opts.peerPort ?? await freePort();
      while (this.peerPort === this.clientPort) this.peerPort = await freePort();
      try {
        await this.launch();
        return;
      } catch (err) {
        const portClash = /address already in use/i.test(this.logs());
        if (fixed || !portClash || attempt >= 3) throw err;
        rmSync(this.dataDir, { recursive: true, force: true });
      }
    }
  }

  private async launch(): Promise<void> {
    // ETCD_* variables in the environment would configure etcd behind our back.
    const env: Record<string, string | undefined> = {};
    for (const key of Object.keys(process.env)) if (key.startsWith('ETCD_')) env[key] = undefined;
    this.daemon = await startDaemon({
      cmd: this.opts.binary ?? 'etcd',
      args: this.args(),
      netns: this.opts.netns,
      env,
      label: `etcd:${this.clientPort}`,
      pidFile: join(this.workDir, 'etcd.pid'),
      registry: null,
      stopTimeoutMs: 10_000,
      echo: this.opts.echo,
    });
    this.stopped = undefined;
    await this.waitHealthy(this.opts.startTimeoutMs ?? 30_000);
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = this.daemon;
      if (!d || !d.running) {
        throw new Error(`etcd exited before becoming healthy (${d?.exitInfo ? describeExit(d.exitInfo) : 'not started'}): ${d?.command ?? ''}\n${tail(this.logs())}`);
      }
      if (await this.healthy()) return;
      if (Date.now() > deadline) {
        throw new Error(`etcd at ${this.clientUrl} not healthy after ${timeoutMs} ms\n${tail(this.logs())}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async healthy(): Promise<boolean> {
    if (this.opts.netns !== undefined) {
      // The HTTP endpoint is only reachable from inside the namespace: ask etcdctl there.
      const r = await this.etcdctlResult(['endpoint', 'health'], { timeoutMs: 5000 });
      return r.code === 0;
    }
    return new Promise<boolean>((resolve) => {
      const tls = this.tls;
      const options = {
        method: 'GET',
        timeout: 2000,
        ...(tls ? {
          ca: readFileSync(tls.caFile),
          cert: tls.clientCertFile ? readFileSync(tls.clientCertFile) : undefined,
          key: tls.clientKeyFile ? readFileSync(tls.clientKeyFile) : undefined,
        } : {}),
      };
      const req = (tls ? httpsRequest : httpRequest)(`${this.clientUrl}/health`, options, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { body += c; });
        res.on('end', () => {
          try {
            resolve(res.statusCode === 200 && (JSON.parse(body) as { health?: unknown }).health === 'true');
          } catch {
            resolve(false);
          }
        });
        res.on('error', () => resolve(false));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(false));
      req.end();
    });
  }

  private ctlArgs(args: readonly string[]): string[] {
    const out = [`--endpoints=${this.clientUrl}`, '--dial-timeout=3s', '--command-timeout=10s'];
    if (this.tls) {
      out.push(`--cacert=${this.tls.caFile}`);
      if (this.tls.clientCertFile) out.push(`--cert=${this.tls.clientCertFile}`);
      if (this.tls.clientKeyFile) out.push(`--key=${this.tls.clientKeyFile}`);
    }
    return [...out, ...args];
  }

  etcdctl(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    return exec('etcdctl', this.ctlArgs(args), { env: ctlEnv(), netns: this.opts.netns, input: opts.input, timeoutMs: opts.timeoutMs ?? 30_000 });
  }

  etcdctlResult(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return run('etcdctl', this.ctlArgs(args), {
      env: ctlEnv(), netns: this.opts.netns, input: opts.input, timeoutMs: opts.timeoutMs ?? 30_000, allowFailure: true,
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const d = this.daemon;
    if (!d || !d.running) return;
    if (NON_FATAL.has(signal)) {
      d.signal(signal);
      return;
    }
    await d.kill(signal);
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new Error('etcd: restart() after stop()');
    const d = this.daemon;
    if (d?.running) {
      d.signal('SIGCONT'); // in case it was frozen with SIGSTOP
      await d.stop();
    }
    await this.launch();
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.entry.cancel();
      const d = this.daemon;
      if (d) {
        if (d.running) d.signal('SIGCONT');
        await d.stop();
        this.lastLogs = d.output();
      }
      if (!this.opts.keepData) {
        rmSync(this.workDir, { recursive: true, force: true });
        untrackPath(this.workDir);
      }
    })();
    return this.stopped;
  }
}

function ctlEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ETCDCTL_API: '3' };
  // Keep ETCDCTL_* settings of the caller's shell from pointing etcdctl elsewhere.
  for (const key of Object.keys(process.env)) if (key.startsWith('ETCDCTL_') && key !== 'ETCDCTL_API') env[key] = undefined;
  return env;
}

// ---- Test PKI ---------------------------------------------------------------------------------

export interface CertOptions {
  /** Subject CN. */
  readonly cn: string;
  /** subjectAltName IPs; default none. */
  readonly ips?: readonly string[];
  /** subjectAltName DNS names; default none. */
  readonly dns?: readonly string[];
  /** Extended key usages; default ['serverAuth', 'clientAuth']. */
  readonly usages?: readonly ('serverAuth' | 'clientAuth')[];
  /** Validity in days; default 365. */
  readonly days?: number;
}

export interface IssuedCert {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly caKeyFile: string;
  /** Server cert for 127.0.0.1/::1/localhost (+ extra SANs), with serverAuth and clientAuth (etcd's gateway dials itself with it). */
  readonly server: IssuedCert;
  /** Client cert (CN "twill-test-client"), clientAuth only. */
  readonly client: IssuedCert;
  /** Issues another certificate from the same CA into `dir/<name>.{crt,key}`. */
  issue(name: string, opts: CertOptions): Promise<IssuedCert>;
  /** TLS options for startEtcd using this PKI's server cert and, for etcdctl, its client cert. */
  etcdTls(opts?: { clientCertAuth?: boolean }): EtcdTlsOptions;
}

export interface TestPkiOptions {
  /** Extra server SANs (IPs), e.g. underlay addresses when etcd listens there. */
  readonly serverIps?: readonly string[];
  readonly serverDns?: readonly string[];
  /** CA subject CN; default "twill-test-ca". */
  readonly caName?: string;
}

/**
 * Makes a throwaway CA and server/client certificates with openssl (EC P-256: fast) in `dir`
 * (created if missing; use tempDir('pki') so it is removed). Files: ca.crt/ca.key,
 * server.crt/server.key, client.crt/client.key.
 */
export async function makeTestPki(dir: string, opts: TestPkiOptions = {}): Promise<TestPki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, 'ca.crt');
  const caKeyFile = join(dir, 'ca.key');
  await exec('openssl', [
    'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', caKeyFile, '-out', caFile, '-days', '3650', '-subj', `/CN=${opts.caName ?? 'twill-test-ca'}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);

  const issue = async (name: string, c: CertOptions): Promise<IssuedCert> => {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`makeTestPki: bad certificate name ${JSON.stringify(name)}`);
    const keyFile = join(dir, `${name}.key`);
    const certFile = join(dir, `${name}.crt`);
    const csr = join(dir, `${name}.csr`);
    const ext = join(dir, `${name}.ext`);
    const sans = [...(c.ips ?? []).map((ip) => `IP:${ip}`), ...(c.dns ?? []).map((d) => `DNS:${d}`)];
    const lines = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      `extendedKeyUsage=${(c.usages ?? ['serverAuth', 'clientAuth']).join(',')}`,
      ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
    ];
    writeFileSync(ext, `${lines.join('\n')}\n`);
    await exec('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', csr, '-subj', `/CN=${c.cn}`]);
    await exec('openssl', ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKeyFile,
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', String(c.days ?? 365), '-extfile', ext, '-out', certFile]);
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
    return { certFile, keyFile };
  };

  const server = await issue('server', {
    cn: 'twill-test-server',
    ips: ['127.0.0.1', '::1', ...(opts.serverIps ?? [])],
    dns: ['localhost', ...(opts.serverDns ?? [])],
    usages: ['serverAuth', 'clientAuth'],
  });
  const client = await issue('client', { cn: 'twill-test-client', usages: ['clientAuth'] });

  return {
    dir,
    caFile,
    caKeyFile,
    server,
    client,
    issue,
    etcdTls: (o = {}) => ({
      caFile,
      certFile: server.certFile,
      keyFile: server.keyFile,
      clientCertAuth: o.clientCertAuth ?? false,
      clientCertFile: client.certFile,
      clientKeyFile: client.keyFile,
    }),
  };
}
