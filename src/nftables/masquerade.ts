import { NftError } from './errors.js';
import { hasTable, parseTable, type NftTable } from './ruleset.js';
import { nftArgv, spawnRunner, type NftResult, type NftRunner } from './runner.js';
import { renderMasqueradeScript, renderRemoveScript, TABLE_FAMILY, TABLE_NAME, type MasqueradeSpec } from './script.js';

export interface MasqueradeOptions {
  /** The nft binary; default "nft" from PATH. Ignored when `runner` is given. */
  readonly nftPath?: string | undefined;
  /** Run nft inside this named network namespace (tests). Ignored when `runner` is given. */
  readonly netns?: string | undefined;
  /** How to run nft; default {@link spawnRunner}. */
  readonly runner?: NftRunner | undefined;
}

/**
 * Twill's masquerading (twilld --ip-masq): owns the nftables table `ip twill` and nothing else,
 * so it never disturbs kube-proxy's, Docker's or the operator's rules. Every apply() replaces the
 * whole table in one nft transaction, so calling it periodically also repairs any drift.
 * Operations on one instance run one at a time, in call order: the last call wins.
 */
export class Masquerade {
  private readonly runner: NftRunner;
  private readonly describe: (args: readonly string[]) => string;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(opts: MasqueradeOptions = {}) {
    this.runner = opts.runner ?? spawnRunner({ nftPath: opts.nftPath, netns: opts.netns });
    this.describe = (args) => nftArgv(opts.runner ? {} : opts, args).flat().join(' ');
  }

  /** Installs (or atomically replaces) the table for this cluster network and pod subnet. */
  async apply(spec: MasqueradeSpec): Promise<void> {
    const script = renderMasqueradeScript(spec); // invalid input rejects here, before nft runs
    await this.serial(() => this.nft(['-f', '-'], script));
  }

  /** Deletes the table; nothing happens (and nothing fails) when it is already gone. */
  async remove(): Promise<void> {
    await this.serial(() => this.nft(['-f', '-'], renderRemoveScript()));
  }

  /** The table as the kernel holds it (read back as JSON), or undefined when there is none. */
  current(): Promise<NftTable | undefined> {
    return this.serial(async () => {
      const listArgs = ['-j', 'list', 'table', TABLE_FAMILY, TABLE_NAME];
      const listed = await this.nft(listArgs, undefined, true);
      if (listed.code !== 0) {
        // Absent, or a real failure? Ask for the list of tables rather than read nft's wording.
        const tablesArgs = ['-j', 'list', 'tables', TABLE_FAMILY];
        const tables = await this.nft(tablesArgs);
        if (!this.parse(tablesArgs, tables, (out) => hasTable(out, TABLE_FAMILY, TABLE_NAME))) return undefined;
        throw this.failure(listArgs, listed);
      }
      return this.parse(listArgs, listed, (out) => parseTable(out, TABLE_FAMILY, TABLE_NAME));
    });
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.tail.then(op, op);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Runs nft; a non-zero exit is an NftError unless `allowFailure`. */
  private async nft(args: readonly string[], input?: string, allowFailure = false): Promise<NftResult> {
    let result: NftResult;
    try {
      result = await this.runner(args, input);
    } catch (err) {
      throw new NftError({ command: this.describe(args), exitCode: null, stderr: '', problem: `could not run: ${(err as Error).message}` }, { cause: err });
    }
    if (result.code !== 0 && !allowFailure) throw this.failure(args, result);
    return result;
  }

  private failure(args: readonly string[], result: NftResult): NftError {
    return new NftError({ command: this.describe(args), exitCode: result.code, stderr: result.stderr });
  }

  /** Parses nft's JSON output; output that is not the expected JSON is an NftError too. */
  private parse<T>(args: readonly string[], result: NftResult, fn: (stdout: string) => T): T {
    try {
      return fn(result.stdout);
    } catch (err) {
      throw new NftError({ command: this.describe(args), exitCode: result.code, stderr: result.stderr, problem: (err as Error).message }, { cause: err });
    }
  }
}
