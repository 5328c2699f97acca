import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TwillError } from '../core/errors.js';
import { formatHostPort, parseHostPort } from '../core/host-port.js';
import type { RoutingStatus } from '../backends/backend.js';
import type { AgentMetrics } from './metrics.js';

// The agent's small HTTP listener (default 127.0.0.1:9101): /healthz and /readyz, as flannel
// serves them, for kubelet probes and systemd watchdogs, plus /metrics for Prometheus.
// It also serves the bgp backend's sessions and routes (/bgp/peers, /bgp/routes) for twillctl.
// Nothing on it changes state, so it answers GET and HEAD only.

/** What the agent reports about itself; called on every request, so it must be cheap. */
export interface HealthReport {
  /** False once the agent cannot do its job any more (e.g. a fatal backend error). */
  readonly healthy: boolean;
  /** True once the subnet file is written, i.e. the CNI plugin can wire pods. */
  readonly ready: boolean;
  /** Why the agent is unhealthy or not ready, shown in the JSON answer. */
  readonly reason?: string;
  /** Extra fields for /healthz (e.g. subnet, backend); JSON-serialisable. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface HealthServerOptions {
  /** "host:port", "[v6]:port"; port 0 picks a free port (see HealthServer.address). */
  readonly addr: string;
  /** Serves /metrics when given; without it /metrics is a 404. */
  readonly metrics?: AgentMetrics;
  readonly health: () => HealthReport;
  /**
   * The backend's BGP sessions and routes (undefined when the backend is not bgp), served as JSON
   * at /bgp/peers and /bgp/routes for `twillctl bgp peers|routes`.
   */
  readonly routing?: () => RoutingStatus | undefined;
  /** Errors of the listening socket once it is up (e.g. EMFILE on accept); ignored by default. */
  readonly onError?: (err: Error) => void;
}

export interface HealthServer {
  /** Where it listens, with the real port when 0 was asked for. */
  readonly address: { readonly host: string; readonly port: number };
  /** Stops listening and drops open connections (a scrape in flight is cut short). */
  close(): Promise<void>;
}


/** Starts listening; rejects with a TwillError (code ELISTEN) naming the address if it cannot. */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { host, port } = parseHostPort(options.addr, 'healthz address');
  const server = createServer((req, res) => {
    void handle(req, res, options).catch((err: unknown) => {
      if (!res.headersSent) send(res, req, 500, 'text/plain; charset=utf-8', `internal error: ${(err as Error).message}\n`);
      else res.destroy();
    });
  });
  // Slow or idle clients must not pin sockets: every answer here is immediate.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.message;
      reject(new TwillError('ELISTEN', `cannot serve /healthz on ${formatHostPort({ host, port })}: ${why}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      // From now on an 'error' without a listener would crash the agent over a probe socket.
      server.on('error', (err) => options.onError?.(err));
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: HealthServerOptions): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const routing = path === '/bgp/peers' || path === '/bgp/routes';
  const known = path === '/healthz' || path === '/readyz' || routing || (path === '/metrics' && options.metrics !== undefined);
  if (!known) return send(res, req, 404, 'text/plain; charset=utf-8', 'not found\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  if (path === '/metrics' && options.metrics !== undefined) {
    const { registry } = options.metrics;
    return send(res, req, 200, registry.contentType, await registry.metrics());
  }
  if (routing) {
    const status = options.routing?.();
    if (status === undefined) return sendJson(res, req, 404, { error: 'this agent runs no bgp backend (or has not started it yet)' });
    const { peers, routes, ...speaker } = status;
    return sendJson(res, req, 200, path === '/bgp/peers' ? { ...speaker, peers } : { ...speaker, routes });
  }
  const report = safeReport(options.health);
  if (path === '/healthz') {
    const body = report.healthy
      ? { status: 'ok', ...report.details }
      : { status: 'unhealthy', reason: report.reason ?? 'unknown', ...report.details };
    return sendJson(res, req, report.healthy ? 200 : 503, body);
  }
  // /readyz: an unhealthy agent is not ready either, whatever it said before.
  if (report.healthy && report.ready) return sendJson(res, req, 200, { ready: true });
  return sendJson(res, req, 503, { ready: false, reason: report.reason ?? (report.healthy ? 'starting' : 'unhealthy') });
}

/** A health callback that throws counts as unhealthy, with its message as the reason. */
function safeReport(health: () => HealthReport): HealthReport {
  try {
    return health();
  } catch (err) {
    return { healthy: false, ready: false, reason: `health check failed: ${(err as Error).message}` };
  }
}

function sendJson(res: ServerResponse, req: IncomingMessage, status: number, body: object): void {
  send(res, req, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
}

function send(res: ServerResponse, req: IncomingMessage, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
