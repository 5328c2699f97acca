import { Nft, type NftOptions } from './nft.js';
import { hasTable, parseTable, type NftTable } from './ruleset.js';
import { renderMasqueradeScript, renderRemoveScript, TABLE_FAMILY, TABLE_NAME, type MasqueradeFamily, type MasqueradeSpec } from './script.js';

/** How Masquerade reaches nft. */
export type MasqueradeOptions = NftOptions;

/**
 * Twill's masquerading (twilld --ip-masq): owns the nftables tables `ip twill` (IPv4) and
 * `ip6 twill` (IPv6) and nothing else, so it never disturbs kube-proxy's, Docker's or the
 * operator's rules. Every apply() replaces both tables in one nft transaction (a family the spec
 * leaves out loses its table), so calling it periodically also repairs any drift.
 * Operations on one instance run one at a time, in call order: the last call wins.
 */
export class Masquerade {
  private readonly nft: Nft;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(opts: MasqueradeOptions = {}) {
    this.nft = new Nft(opts);
  }

  /**
   * Installs (or atomically replaces) the table of each family in `spec` for its cluster network
   * and pod subnet, and removes the table of a family it leaves out.
   */
  async apply(spec: MasqueradeSpec): Promise<void> {
    const script = renderMasqueradeScript(spec); // invalid input rejects here, before nft runs
    await this.serial(() => this.nft.run(['-f', '-'], script));
  }

  /** Deletes both tables; nothing happens (and nothing fails) when they are already gone. */
  async remove(): Promise<void> {
    await this.serial(() => this.nft.run(['-f', '-'], renderRemoveScript()));
  }

  /** The table of `family` (default IPv4) as the kernel holds it (read back as JSON), or undefined when there is none. */
  current(family: MasqueradeFamily = TABLE_FAMILY): Promise<NftTable | undefined> {
    return this.serial(async () => {
      const listArgs = ['-j', 'list', 'table', family, TABLE_NAME];
      const listed = await this.nft.run(listArgs, undefined, true);
      if (listed.code !== 0) {
        // Absent, or a real failure? Ask for the list of tables rather than read nft's wording.
        const tablesArgs = ['-j', 'list', 'tables', family];
        const tables = await this.nft.run(tablesArgs);
        if (!this.nft.parse(tablesArgs, tables, (out) => hasTable(out, family, TABLE_NAME))) return undefined;
        throw this.nft.failure(listArgs, listed);
      }
      return this.nft.parse(listArgs, listed, (out) => parseTable(out, family, TABLE_NAME));
    });
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.tail.then(op, op);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
