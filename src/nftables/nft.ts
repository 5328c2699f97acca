import { NftError } from './errors.js';
import { nftArgv, spawnRunner, type NftResult, type NftRunner } from './runner.js';

/** How to reach nft: a binary and namespace for the default runner, or a runner of one's own. */
export interface NftOptions {
  /** The nft binary; default "nft" from PATH. Ignored when `runner` is given. */
  readonly nftPath?: string | undefined;
  /** Run nft inside this named network namespace (tests). Ignored when `runner` is given. */
  readonly netns?: string | undefined;
  /** How to run nft; default {@link spawnRunner}. */
  readonly runner?: NftRunner | undefined;
}

/** Runs nft and turns every way it can fail into an NftError naming the command line. */
export class Nft {
  private readonly runner: NftRunner;
  private readonly describe: (args: readonly string[]) => string;

  constructor(opts: NftOptions = {}) {
    this.runner = opts.runner ?? spawnRunner({ nftPath: opts.nftPath, netns: opts.netns });
    this.describe = (args) => nftArgv(opts.runner ? {} : opts, args).flat().join(' ');
  }

  /** Runs nft; a non-zero exit is an NftError unless `allowFailure`. */
  async run(args: readonly string[], input?: string, allowFailure = false): Promise<NftResult> {
    let result: NftResult;
    try {
      result = await this.runner(args, input);
    } catch (err) {
      throw new NftError({ command: this.describe(args), exitCode: null, stderr: '', problem: `could not run: ${(err as Error).message}` }, { cause: err });
    }
    if (result.code !== 0 && !allowFailure) throw this.failure(args, result);
    return result;
  }

  failure(args: readonly string[], result: NftResult): NftError {
    return new NftError({ command: this.describe(args), exitCode: result.code, stderr: result.stderr });
  }

  /** Parses nft's output with `fn`; output `fn` rejects is an NftError too (`problem` prefixes the reason). */
  parse<T>(args: readonly string[], result: NftResult, fn: (stdout: string) => T, problem = ''): T {
    try {
      return fn(result.stdout);
    } catch (err) {
      throw new NftError({ command: this.describe(args), exitCode: result.code, stderr: result.stderr, problem: `${problem}${(err as Error).message}` }, { cause: err });
    }
  }
}
