#!/usr/bin/env node
import { tuneHeap } from './heap-tuning.js';
import { registerBuiltins } from '../backends/builtins.js';
import { HostRequirementError, InvalidArgumentError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { exitNow, Netlink } from '../netlink/index.js';
import { Masquerade } from '../nftables/index.js';
import { EtcdSubnetStore } from '../store/index.js';
import { Agent } from './agent.js';
import { startCniService, type CniService } from './cni-service.js';
import { flagsForLog, parseAgentFlags, type AgentFlags } from './flags.js';
import { startHealthServer, type HealthServer } from './http-server.js';
import { AgentMetrics } from './metrics.js';

// twilld, the node agent: flags -> the parts -> Agent.run until SIGTERM/SIGINT. Exit codes:
// 0 after a clean stop, 2 for bad flags, 1 for a fatal error.

async function runAgent(flags: AgentFlags): Promise<number> {
  const log = createLogger({ level: flags.logLevel });
  log.info({ flags: flagsForLog(flags) }, 'twilld starting');
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      log.info({ signal: sig }, 'stopping; the lease and the kernel state stay');
      stop.abort();
    });
  }

  const metrics = new AgentMetrics();
  const store = EtcdSubnetStore.connect({
    endpoints: flags.etcdEndpoints,
    prefix: flags.etcdPrefix,
    tls: { caFile: flags.etcdCaFile, certFile: flags.etcdCertFile, keyFile: flags.etcdKeyFile },
    username: flags.etcdUsername,
    password: flags.etcdPassword,
  });
  const netlink = Netlink.open();
  const agent = new Agent({
    settings: {
      iface: flags.ifaces,
      publicIp: flags.publicIp,
      publicIpv6: flags.publicIpv6,
      subnetFile: flags.subnetFile,
      leaseTtlSeconds: Math.round(flags.subnetLeaseTtlMs / 1000),
      ipMasq: flags.ipMasq,
      resyncIntervalMs: flags.resyncIntervalMs,
      bgp: flags.bgp,
    },
    store,
    netlink,
    masquerade: new Masquerade(),
    registry: registerBuiltins(),
    log,
    metrics,
  });

  metrics.watchRouting(() => agent.routing());
  let server: HealthServer | undefined;
  let cni: CniService | undefined;
  let code = 1;
  try {
    if (flags.cniSocket !== undefined) {
      cni = await startCniService({
        socketPath: flags.cniSocket, dataDir: flags.cniDataDir, confDir: flags.cniConfDir, workers: flags.cniWorkers,
        timeoutMs: flags.cniTimeoutMs, socketGroup: flags.cniSocketGroup, log: log.child({ component: 'cni' }),
      });
    }
    if (flags.healthzAddr !== undefined) {
      server = await startHealthServer({
        addr: flags.healthzAddr,
        metrics: flags.metrics ? metrics : undefined,
        routing: () => agent.routing(),
        health: () => {
          const h = agent.health();
          return { healthy: h.healthy, ready: h.ready, reason: h.reason, details: { subnet: h.subnet ?? null, problems: h.problems } };
        },
        onError: (err) => log.warn({ err }, 'health endpoint error'),
      });
      log.info({ addr: server.address }, 'serving /healthz, /readyz and /metrics');
    }
    await agent.run(stop.signal);
    code = 0;
  } catch (err) {
    if (err instanceof HostRequirementError) log.fatal({ code: err.code }, `twilld cannot run on this host: ${err.message}`);
    else log.fatal({ err }, 'twilld failed');
  } finally {
    await server?.close();
    await cni?.close();
    await store.close();
    netlink.close();
    // process.exit() would wait forever for a CNI thread stuck in the kernel (cni/plugin-pool.ts).
    if ((cni?.stuckThreads ?? 0) > 0) {
      log.error({ stuckThreads: cni?.stuckThreads }, 'CNI worker threads are stuck in the kernel; exiting without waiting for them');
      exitNow(code);
    }
  }
  return code;
}

async function main(): Promise<number> {
  let command;
  try {
    command = parseAgentFlags(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    process.stderr.write(`twilld: ${err.message}\n`);
    return 2;
  }
  if (command.kind !== 'run') {
    process.stdout.write(command.text.endsWith('\n') ? command.text : `${command.text}\n`);
    return 0;
  }
  tuneHeap();
  return runAgent(command.flags);
}

// Exit explicitly: gRPC channels to etcd may hold the event loop open after close(). (No top-level
// await: the bundle that runs this is a CommonJS script, see scripts/bundle-agent.mjs.)
void main().then((code) => process.exit(code));
