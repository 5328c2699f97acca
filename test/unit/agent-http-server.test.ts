import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startHealthServer, type HealthReport, type HealthServer } from '../../src/agent/http-server.js';
import { formatHostPort, parseHostPort } from '../../src/core/host-port.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { InvalidArgumentError, TwillError } from '../../src/core/errors.js';

describe('health server', () => {
  const servers: HealthServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(health: () => HealthReport, metrics?: AgentMetrics): Promise<string> {
    const server = await startHealthServer({ addr: '127.0.0.1:0', health, ...(metrics && { metrics }) });
    servers.push(server);
    expect(server.address.host).toBe('127.0.0.1');
    expect(server.address.port).toBeGreaterThan(0);
    return `http://127.0.0.1:${server.address.port}`;
  }

  it('answers /healthz 200 while healthy and 503 with the reason when not', async () => {
    let report: HealthReport = { healthy: true, ready: false, details: { subnet: '10.244.3.0/24' } };
    const base = await start(() => report);
    let res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ status: 'ok', subnet: '10.244.3.0/24' });
    report = { healthy: false, ready: true, reason: 'vxlan backend failed' };
    res = await fetch(`${base}/healthz?verbose=1`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unhealthy', reason: 'vxlan backend failed' });
  });

  it('answers /readyz 503 until ready, then 200; unhealthy is never ready', async () => {
    let report: HealthReport = { healthy: true, ready: false, reason: 'waiting for the network config in etcd' };
    const base = await start(() => report);
    let res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false, reason: 'waiting for the network config in etcd' });
    report = { healthy: true, ready: true };
    res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ready: true });
    report = { healthy: false, ready: true };
    res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false, reason: 'unhealthy' });
  });

  it('counts a throwing health callback as unhealthy', async () => {
    const base = await start(() => {
      throw new Error('state lost');
    });
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unhealthy', reason: 'health check failed: state lost' });
  });

  it('serves /metrics in Prometheus text when metrics are on, 404 when off', async () => {
    const metrics = new AgentMetrics();
    metrics.setLeasesKnown(4);
    const on = await start(() => ({ healthy: true, ready: true }), metrics);
    const res = await fetch(`${on}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.registry.contentType);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of ['twill_leases_known 4', 'twill_lease_renewals_total', 'twill_etcd_errors_total', 'twill_watch_restarts_total', 'twill_sync_duration_seconds', 'process_cpu_seconds_total']) {
      expect(text).toContain(name);
    }
    const off = await start(() => ({ healthy: true, ready: true }));
    expect((await fetch(`${off}/metrics`)).status).toBe(404);
  });

  it('answers 404 for other paths, 405 for other methods, HEAD without a body', async () => {
    const base = await start(() => ({ healthy: true, ready: true }));
    for (const path of ['/', '/health', '/healthz/x', '/metricsx']) expect((await fetch(`${base}${path}`)).status).toBe(404);
    const post = await fetch(`${base}/healthz`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${base}/readyz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
  });

  it('rejects with an error naming the address when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const attempt = startHealthServer({ addr: `127.0.0.1:${port}`, health: () => ({ healthy: true, ready: true }) });
      await expect(attempt).rejects.toThrow(TwillError);
      await expect(attempt).rejects.toThrow(`cannot serve /healthz on 127.0.0.1:${port}: the address is already in use`);
      await expect(attempt).rejects.toMatchObject({ code: 'ELISTEN', cause: { code: 'EADDRINUSE' } });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('rejects a malformed address before listening', async () => {
    await expect(startHealthServer({ addr: 'nope', health: () => ({ healthy: true, ready: true }) })).rejects.toThrow(InvalidArgumentError);
  });

  it('closes promptly even with a keep-alive connection open', async () => {
    const server = await startHealthServer({ addr: '127.0.0.1:0', health: () => ({ healthy: true, ready: true }) });
    expect((await fetch(`http://127.0.0.1:${server.address.port}/healthz`)).status).toBe(200); // fetch keeps the socket alive
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('host:port', () => {
  it('parses and formats IPv4, names and bracketed IPv6', () => {
    expect(parseHostPort('127.0.0.1:9101')).toEqual({ host: '127.0.0.1', port: 9101 });
    expect(parseHostPort('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(parseHostPort('[::1]:9101')).toEqual({ host: '::1', port: 9101 });
    expect(formatHostPort({ host: '::1', port: 9101 })).toBe('[::1]:9101');
    expect(formatHostPort({ host: '10.0.0.1', port: 1 })).toBe('10.0.0.1:1');
    for (const bad of ['', '127.0.0.1', '::1:9101', '[::1]', ':1', 'a:b', 'host:-1', 'h:123456', '[10.0.0.1]:1', 'h:65536']) {
      expect(() => parseHostPort(bad, '--healthz-addr')).toThrow(`invalid --healthz-addr ${JSON.stringify(bad)}`);
    }
  });
});
