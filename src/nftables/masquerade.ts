import { Nft, type NftOptions } from './nft.js';
import { hasTable, parseTable, type NftTable } from './ruleset.js';
import { renderMasqueradeScript, renderRemoveScript, TABLE_FAMILY, TABLE_NAME, type MasqueradeSpec } from './script.js';

/** How Masquerade reaches nft. */
export type MasqueradeOptions = NftOptions;

/**
 * Twill's masquerading (twilld --ip-masq): owns the nftables table `ip twill` and nothing else,
 * so it never disturbs kube-proxy's, Docker's or the operator's rules. Every apply() replaces the
 * whole table in one nft transaction, so calling it periodically also repairs any drift.
 * Operations on one instance run one at a time, in call order: the last call wins.
 */
export class Masquerade {
  private readonly nft: Nft;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(opts: MasqueradeOptions = {}) {
    this.nft = new Nft(opts);
  }

  /** Installs (or atomically replaces) the table for this cluster network and pod subnet. */
  async apply(spec: MasqueradeSpec): Promise<void> {
    const script = renderMasqueradeScript(spec); // invalid input rejects here, before nft runs
    await this.serial(() => this.nft.run(['-f', '-'], script));
  }

  /** Deletes the table; nothing happens (and nothing fails) when it is already gone. */
  async remove(): Promise<void> {
    await this.serial(() => this.nft.run(['-f', '-'], renderRemoveScript()));
  }

  /** The table as the kernel holds it (read back as JSON), or undefined when there is none. */
  current(): Promise<NftTable | undefined> {
    return this.serial(async () => {
      const listArgs = ['-j', 'list', 'table', TABLE_FAMILY, TABLE_NAME];
      const listed = await this.nft.run(listArgs, undefined, true);
      if (listed.code !== 0) {
        // Absent, or a real failure? Ask for the list of tables rather than read nft's wording.
        const tablesArgs = ['-j', 'list', 'tables', TABLE_FAMILY];
        const tables = await this.nft.run(tablesArgs);
        if (!this.nft.parse(tablesArgs, tables, (out) => hasTable(out, TABLE_FAMILY, TABLE_NAME))) return undefined;
        throw this.nft.failure(listArgs, listed);
      }
      return this.nft.parse(listArgs, listed, (out) => parseTable(out, TABLE_FAMILY, TABLE_NAME));
    });
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.tail.then(op, op);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
