import type * as ChildProcess from 'node:child_process';
import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';

// Node builtins that most CNI calls never use, loaded on their first use rather than with the
// module that names them. A CNI call without the agent is a new process that loads every module
// the plugin imports: node:child_process (with the net, dgram and stream modules it loads) took
// about 7 ms of each call and node:crypto about 4, where an ADD or DEL runs nft only when it
// masquerades pods itself and hashes only then (docs/design/cni-shim-and-socket.md).

const requireBuiltin = createRequire(import.meta.url);
let crypto: typeof Crypto | undefined;
let childProcess: typeof ChildProcess | undefined;

/** node:crypto, loaded on the first call. */
export function lazyCrypto(): typeof Crypto {
  return (crypto ??= requireBuiltin('node:crypto') as typeof Crypto);
}

/** node:child_process, loaded on the first call. */
export function lazyChildProcess(): typeof ChildProcess {
  return (childProcess ??= requireBuiltin('node:child_process') as typeof ChildProcess);
}
