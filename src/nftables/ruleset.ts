/**
 * Reading nft's JSON output (`nft -j list ...`, libnftables-json(5)): never its text, whose
 * layout changes between releases. Only what Twill needs is typed; rule expressions stay as nft
 * wrote them.
 */

export interface NftChain {
  readonly name: string;
  readonly handle: number;
  /** Base chains only: "nat", "filter". */
  readonly type: string | undefined;
  readonly hook: string | undefined;
  /** Numeric priority (srcnat is 100, filter 0). */
  readonly prio: number | undefined;
  readonly policy: string | undefined;
}

export interface NftRule {
  readonly chain: string;
  readonly handle: number;
  readonly comment: string | undefined;
  /** The rule's statements, as nft's JSON schema has them. */
  readonly expr: readonly unknown[];
}

/** One table as listed, its chains and rules in nft's order. */
export interface NftTable {
  readonly family: string;
  readonly name: string;
  readonly handle: number;
  readonly chains: readonly NftChain[];
  readonly rules: readonly NftRule[];
}

type Obj = Record<string, unknown>;

/** The objects of an nft JSON document, each as { kind: body } ({ table: {...} }, { rule: {...} }). */
function objectsOf(json: string): Obj[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new Error(`nft output is not JSON: ${(err as Error).message}`);
  }
  const list = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(list)) throw new Error('nft output has no "nftables" array');
  return list.filter((o): o is Obj => typeof o === 'object' && o !== null);
}

function bodies(objects: Obj[], kind: string, family: string, table: string, tableKey: string): Obj[] {
  return objects
    .map((o) => o[kind])
    .filter((b): b is Obj => typeof b === 'object' && b !== null)
    .filter((b) => b.family === family && b[tableKey] === table);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** True when `nft -j list tables` output names the table. */
export function hasTable(json: string, family: string, name: string): boolean {
  return bodies(objectsOf(json), 'table', family, name, 'name').length > 0;
}

/** The table `family name` from `nft -j list table|ruleset` output, or undefined if it is not there. */
export function parseTable(json: string, family: string, name: string): NftTable | undefined {
  const objects = objectsOf(json);
  const [table] = bodies(objects, 'table', family, name, 'name');
  if (!table) return undefined;
  const chains = bodies(objects, 'chain', family, name, 'table').map((c): NftChain => ({
    name: str(c.name) ?? '',
    handle: num(c.handle) ?? 0,
    type: str(c.type),
    hook: str(c.hook),
    prio: num(c.prio),
    policy: str(c.policy),
  }));
  const rules = bodies(objects, 'rule', family, name, 'table').map((r): NftRule => ({
    chain: str(r.chain) ?? '',
    handle: num(r.handle) ?? 0,
    comment: str(r.comment),
    expr: Array.isArray(r.expr) ? (r.expr as unknown[]) : [],
  }));
  return { family, name, handle: num(table.handle) ?? 0, chains, rules };
}
