#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { EtcdSubnetStore, type SubnetStore } from '../store/index.js';
import { configGet, configSet, leases, status, type CommandResult } from './commands.js';
import { runServe } from './bgp/serve.js';
import { bgpPeers, bgpRoutes } from './bgp/status.js';
import { runDemo } from './demo/demo.js';
import { parseCtlFlags, type CtlFlags } from './flags.js';
import { uninstall } from './uninstall/command.js';

// twillctl: flags -> one command against etcd and/or the local agent. Exit codes: 0 success,
// 1 failure (or `status` of an agent that is not ready), 2 usage error.

async function run(flags: CtlFlags, args: readonly string[]): Promise<CommandResult> {
  const [command, sub, arg] = args;
  const connect = (): SubnetStore => EtcdSubnetStore.connect({
    endpoints: flags.etcdEndpoints,
    prefix: flags.etcdPrefix,
    tls: { caFile: flags.etcdCaFile, certFile: flags.etcdCertFile, keyFile: flags.etcdKeyFile },
    username: flags.etcdUsername,
    password: flags.etcdPassword,
  });
  const withStore = async (fn: (store: SubnetStore) => Promise<CommandResult>): Promise<CommandResult> => {
    const store = connect();
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  };
  if (command === 'config' && sub === 'get') return withStore((s) => configGet(s, flags));
  if (command === 'config' && sub === 'set') return withStore((s) => configSet(s, arg, () => readFileSync(0, 'utf8')));
  if (command === 'leases' && sub === undefined) return withStore((s) => leases(s, flags));
  if (command === 'status' && sub === undefined) return withStore((s) => status(s, flags));
  if (command === 'uninstall' && sub === undefined) return uninstall(flags, connect);
  if (command === 'bgp' && sub === 'peers' && arg === undefined) return bgpPeers(flags);
  if (command === 'bgp' && sub === 'routes' && arg === undefined) return bgpRoutes(flags);
  if (command === 'demo') throw new InvalidArgumentError('command', args.join(' '), 'demo takes its own options and comes first: twillctl demo [options] (see twillctl demo --help)');
  throw new InvalidArgumentError('command', args.join(' '), 'unknown; commands are: config get, config set FILE|-, leases, status, uninstall, demo, bgp peers, bgp routes, bgp serve (see twillctl --help)');
}

async function main(): Promise<number> {
  // The demo builds its own cluster and has its own options (twillctl demo --help).
  if (process.argv[2] === 'demo') return runDemo(process.argv.slice(3));
  // So does the standalone BGP speaker (twillctl bgp serve --help).
  if (process.argv[2] === 'bgp' && process.argv[3] === 'serve') return runServe(process.argv.slice(4));
  let parsed;
  try {
    parsed = parseCtlFlags(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    process.stderr.write(`twillctl: ${err.message}\n`);
    return 2;
  }
  if (parsed.kind !== 'run') {
    process.stdout.write(parsed.text);
    return 0;
  }
  try {
    const result = await run(parsed.flags, parsed.args);
    process.stdout.write(result.stdout);
    return result.exitCode;
  } catch (err) {
    process.stderr.write(`twillctl: ${(err as Error).message}\n`);
    return err instanceof InvalidArgumentError && (err.what === 'command' || err.what === 'config set') ? 2 : 1;
  }
}

// Exit explicitly: gRPC channels to etcd may hold the event loop open after close().
process.exit(await main());
