import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { processesInNetns, type LocalProcess } from '../../core/local-processes.js';
import { TwillError } from '../../core/errors.js';
import { networkPrefix } from '../../core/ip.js';
import { parseSubnetEnv } from '../../core/subnet-env.js';
import { Netlink } from '../../netlink/index.js';
import { spawnRunner } from '../../nftables/index.js';
import { describeSubnets, type SubnetStore } from '../../store/index.js';
import { probeAgent } from '../agent-probe.js';
import type { CommandResult } from '../commands.js';
import type { CtlFlags } from '../flags.js';
import { removeTwillState, type Removal } from './remove.js';

/**
 * `twillctl uninstall`: the way back from Twill to flanneld on this host (README "Migrating from
 * flannel"). It removes Twill's kernel state from the network namespace it runs in
 * (remove.ts) and keeps the lease by default: flanneld then finds its subnet again by PublicIP,
 * and the pods keep their addresses. It refuses while twilld runs here, which would put
 * everything back within one resync.
 */

/** Is this process twilld? `node /usr/local/bin/twilld`, `node dist/src/agent/main.js`, or a binary named so. */
export function isTwilld(p: LocalProcess): boolean {
  if (p.comm === 'twilld') return true;
  return p.comm.startsWith('node') && p.argv.slice(1).some((a) => basename(a) === 'twilld' || a.endsWith('/agent/main.js'));
}

/** Why uninstalling now would be undone at once, or undefined when no twilld runs here. */
export async function twilldRunning(healthzAddr: string, processes: () => LocalProcess[] = () => processesInNetns(isTwilld)): Promise<string | undefined> {
  const pids = processes().map((p) => p.pid);
  if (pids.length > 0) return `twilld (pid ${pids.join(', ')}) is running in this network namespace`;
  const health = await probeAgent(healthzAddr, '/healthz');
  if (health.status !== 'unreachable') return `an agent answers on ${healthzAddr} (/healthz: ${health.status})`;
  return undefined;
}

/**
 * Deletes this host's lease (--delete-lease): the subnet the subnet file names, and only while its
 * record's PublicIP is an address of this host, since a stale or copied file could name another
 * host's. Without the flag the lease stays: flanneld takes it back by PublicIP (and otherwise its
 * etcd lease expires). Returns what was removed, or undefined when there was no such lease.
 */
async function deleteLease(store: SubnetStore, subnetFile: string, localAddresses: readonly string[]): Promise<string | undefined> {
  let subnet: string;
  try {
    subnet = networkPrefix(parseSubnetEnv(readFileSync(subnetFile, 'utf8'), subnetFile).subnet);
  } catch (err) {
    throw new TwillError('ENOLEASE', `--delete-lease: cannot tell this host's lease: ${(err as Error).message}`, { cause: err });
  }
  const lease = (await store.listLeases({ expiry: false })).leases.find((l) => l.subnet === subnet);
  if (!lease) return undefined;
  if (!localAddresses.includes(lease.record.publicIp)) {
    throw new TwillError('ENOTMINE', `--delete-lease: the lease ${subnet} (named by ${subnetFile}) carries PublicIP ${lease.record.publicIp}, ` +
      `which is not an address of this host; not deleting it (with --public-ip behind NAT, delete ${lease.key} with etcdctl)`);
  }
  await store.deleteLease(lease.subnet, lease.ipv6Subnet);
  return `lease ${describeSubnets(lease)} in etcd`;
}

export async function uninstall(flags: CtlFlags, connect: () => SubnetStore): Promise<CommandResult> {
  const refusal = await twilldRunning(flags.healthzAddr);
  if (refusal !== undefined) throw new TwillError('ETWILLD_RUNNING', `refusing to uninstall: ${refusal}; stop twilld first (it would put everything back)`);

  const nl = Netlink.open();
  let removal: Removal;
  let localAddresses: string[];
  try {
    removal = await removeTwillState({ nl, nft: spawnRunner(), stateDir: dirname(flags.subnetFile) });
    localAddresses = (await nl.listAddresses()).map((a) => a.cidr.split('/')[0]!);
  } finally {
    nl.close();
  }
  if (flags.deleteLease) {
    const store = connect();
    try {
      const lease = await deleteLease(store, flags.subnetFile, localAddresses);
      if (lease !== undefined) removal.removed.push(lease);
    } catch (err) {
      removal.failed.push(`lease: ${(err as Error).message}`);
    } finally {
      await store.close();
    }
  }
  const exitCode = removal.failed.length === 0 ? 0 : 1;
  if (flags.output === 'json') return { stdout: `${JSON.stringify(removal, null, 2)}\n`, exitCode };
  const lines = [
    ...removal.removed.map((r) => `removed ${r}`),
    ...removal.failed.map((f) => `FAILED ${f}`),
  ];
  if (lines.length === 0) lines.push('nothing of Twill\'s left in this network namespace');
  if (!flags.deleteLease) lines.push('kept this host\'s lease in etcd (flanneld takes it back by PublicIP; --delete-lease deletes it)');
  return { stdout: `${lines.join('\n')}\n`, exitCode };
}
