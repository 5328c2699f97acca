/**
 * Many keys put into (or deleted from) etcd in one transaction over etcd's gRPC API: a
 * benchmark's stimulus, e.g. 5,000 leases appearing at once. One transaction means one raft
 * entry and one fsync (5,000 single puts take ~8 s here), and gRPC rather than etcd's JSON
 * gateway (POST /v3/kv/txn) because the gateway's JSON conversion alone took 150-250 ms of a
 * 5,000-put transaction here, time that is the harness's, not the agent's. etcd needs room for it:
 * --max-txn-ops (default 128) and --max-request-bytes (default 1.5 MiB).
 *
 * The only user of `etcd3` outside src/store (.dependency-cruiser.cjs): Twill itself never writes
 * other hosts' leases in bulk. The client connects from the calling thread's network namespace.
 */
import { Etcd3, type IRequestOp } from 'etcd3';

export interface EtcdBulk {
  /** Puts every [key, value] in one transaction; resolves once etcd has committed it. */
  putAll(entries: readonly (readonly [string, string])[]): Promise<void>;
  /** Deletes every key in one transaction. */
  deleteAll(keys: readonly string[]): Promise<void>;
  /** A transaction of `count` puts under `prefix` and their deletion: warms this client (connection, encoders) before a timed call. */
  warmUp(prefix: string, count: number): Promise<void>;
  close(): void;
}

export function etcdBulk(clientUrl: string): EtcdBulk {
  const client = new Etcd3({ hosts: clientUrl });
  // With no comparisons a transaction always takes its success branch (etcd's TxnRequest).
  const txn = (success: IRequestOp[]): Promise<unknown> => client.kv.txn({ success });
  const bulk: EtcdBulk = {
    async putAll(entries) {
      await txn(entries.map(([key, value]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } })));
    },
    async deleteAll(keys) {
      await txn(keys.map((key) => ({ request_delete_range: { key: Buffer.from(key) } })));
    },
    async warmUp(prefix, count) {
      const keys = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
      await bulk.putAll(keys.map((k) => [k, 'x'.repeat(100)] as const));
      await bulk.deleteAll(keys);
    },
    close: () => client.close(),
  };
  return bulk;
}
