import { lazyChildProcess } from '../core/lazy-builtins.js';

/** How one nft invocation ended. */
export interface NftResult {
  /** Exit code; null when killed (by the timeout, say). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs nft with `args`, writing `input` (a script for `-f -`) to its stdin. Resolves with how it
 * ended, whatever the exit code; rejects only when nft could not be run at all. Injectable so
 * tests can fake nft or run it inside a network namespace.
 */
export type NftRunner = (args: readonly string[], input?: string) => Promise<NftResult>;

export interface SpawnRunnerOptions {
  /** The nft binary; default "nft" from PATH. */
  readonly nftPath?: string | undefined;
  /** Run inside this named network namespace (`ip netns exec <netns> nft ...`); default: our own. */
  readonly netns?: string | undefined;
  /** Kill nft after this long; default 30 s. nft never needs that long, but a hang must not wedge the agent. */
  readonly timeoutMs?: number | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** The argv a runner made by {@link spawnRunner} executes, for messages. */
export function nftArgv(opts: SpawnRunnerOptions, args: readonly string[]): [string, string[]] {
  const nft = opts.nftPath ?? 'nft';
  return opts.netns === undefined ? [nft, [...args]] : ['ip', ['netns', 'exec', opts.netns, nft, ...args]];
}

/** The default runner: spawns nft (never through a shell) and collects its output. */
export function spawnRunner(opts: SpawnRunnerOptions = {}): NftRunner {
  return (args, input) => new Promise<NftResult>((resolve, reject) => {
    const [file, argv] = nftArgv(opts, args);
    const child = lazyChildProcess().spawn(file, argv, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    if (input !== undefined) {
      // nft may exit before reading everything (a syntax error on line 1): its exit status says why.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(input);
    }
  });
}
