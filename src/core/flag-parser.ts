import { parseArgs } from 'node:util';
import { InvalidArgumentError } from './errors.js';

// A small table-driven command-line reader shared by twilld and twillctl. Like flanneld
// (FLANNELD_<FLAG>), every flag can also come from the environment as <PREFIX>_<FLAG_IN_SNAKE>;
// the command line wins. One table drives the parser, the variable names and --help.

export interface FlagSpec {
  readonly name: string;
  /**
   * list: repeatable and comma-separated; repeated: repeatable, each value whole (for values that
   * hold commas themselves, e.g. --peer ADDR,asn=N); boolean: also --no-<name> and --<name>=true|false.
   */
  readonly kind: 'string' | 'list' | 'repeated' | 'boolean';
  readonly arg?: string;
  readonly default?: string;
  /** A one-letter alias, e.g. "o" for --output. */
  readonly short?: string;
  readonly help: string;
}

/** Where a value came from, and so how an error names it: `--flag` or `PREFIX_FLAG`. */
export interface Raw {
  readonly what: string;
  readonly values: readonly string[];
}

export type RawLookup = (name: string) => Raw | undefined;

export interface CommandLine {
  readonly help: boolean;
  readonly version: boolean;
  readonly positionals: readonly string[];
  /** Value of a flag from the command line, else the environment, else its default. */
  readonly raw: RawLookup;
}

export interface ReadOptions {
  readonly program: string;
  /** Environment variable prefix, e.g. "TWILLD". */
  readonly envPrefix: string;
  readonly flags: readonly FlagSpec[];
  readonly allowPositionals?: boolean;
}

export function envName(prefix: string, flag: string): string {
  return `${prefix}_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/**
 * Reads argv and the environment. Unknown options, and unknown <PREFIX>_ variables (typos), are
 * InvalidArgumentErrors naming them. --help and --version are reported, not acted on.
 */
export function readCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv, opts: ReadOptions): CommandLine {
  const specs = new Map(opts.flags.map((f) => [f.name, f]));
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } };
  for (const f of opts.flags) {
    options[f.name] = { type: f.kind === 'boolean' ? 'boolean' : 'string', ...(f.short ? { short: f.short } : {}) };
    if (f.kind === 'boolean') options[`no-${f.name}`] = { type: 'boolean' };
  }
  // strict: false, and the tokens checked below instead, for errors that name the flag and
  // value, and for Go's --flag=false, which flannel users write (strict mode rejects it).
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  let help = false;
  let version = false;
  const positionals: string[] = [];
  const values = new Map<string, string[]>();
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      if (!opts.allowPositionals) {
        throw new InvalidArgumentError('argument', t.value, `${opts.program} takes no positional arguments (a boolean flag is written --flag=false)`);
      }
      positionals.push(t.value);
      continue;
    }
    if (t.name === 'help' || t.name === 'version') {
      if (t.value !== undefined) throw new InvalidArgumentError(t.rawName, t.value, 'takes no value');
      if (t.name === 'help') help = true;
      else version = true;
      continue;
    }
    const negated = t.name.startsWith('no-') ? specs.get(t.name.slice(3)) : undefined;
    const spec = specs.get(t.name) ?? (negated?.kind === 'boolean' ? negated : undefined);
    if (spec === undefined) throw new InvalidArgumentError('option', t.rawName, `unknown option; see ${opts.program} --help`);
    if (spec.kind === 'boolean') {
      if (negated !== undefined && t.value !== undefined) throw new InvalidArgumentError(t.rawName, t.value, 'takes no value');
      const value = negated !== undefined ? 'false' : t.value === undefined ? 'true' : t.value;
      values.set(spec.name, [value]); // the last one wins, as with Go's flag package
      continue;
    }
    if (t.value === undefined) throw new InvalidArgumentError(t.rawName, '', 'needs a value');
    if (!t.inlineValue && t.value.startsWith('-')) {
      throw new InvalidArgumentError(t.rawName, t.value, `the value looks like an option; write ${t.rawName}=VALUE if you mean it`);
    }
    const previous = spec.kind === 'list' || spec.kind === 'repeated' ? (values.get(spec.name) ?? []) : [];
    values.set(spec.name, [...previous, t.value]);
  }

  // --help and --version answer whatever the environment holds.
  const known = new Set(opts.flags.map((f) => envName(opts.envPrefix, f.name)));
  for (const name of help || version ? [] : Object.keys(env)) {
    if (name.startsWith(`${opts.envPrefix}_`) && !known.has(name)) {
      throw new InvalidArgumentError('environment variable', name, `is not a ${opts.program} setting; see ${opts.program} --help for the ${opts.envPrefix}_* variables`);
    }
  }
  const raw: RawLookup = (name) => {
    const fromFlag = values.get(name);
    if (fromFlag !== undefined) return { what: `--${name}`, values: fromFlag };
    const variable = envName(opts.envPrefix, name);
    const fromEnv = env[variable];
    // An empty variable counts as unset: `TWILLD_PUBLIC_IP=` in an env file means "not set".
    if (fromEnv !== undefined && fromEnv !== '') return { what: variable, values: [fromEnv] };
    const dflt = specs.get(name)?.default;
    return dflt === undefined ? undefined : { what: `--${name}`, values: [dflt] };
  };
  return { help, version, positionals, raw };
}

/** Typed accessors over a RawLookup; every error names the flag or variable. */
export class FlagValues {
  constructor(private readonly raw: RawLookup) {}

  /** The last value of a flag that has a default. */
  required(name: string): { what: string; value: string } {
    const r = this.raw(name);
    if (r === undefined) throw new InvalidArgumentError(`--${name}`, '', 'is required');
    return { what: r.what, value: r.values[r.values.length - 1]! };
  }

  optional(name: string, check: (value: string, what: string) => string = nonEmpty): string | undefined {
    const r = this.raw(name);
    return r === undefined ? undefined : check(r.values[r.values.length - 1]!, r.what);
  }

  list(name: string): { what: string; items: string[] } {
    const r = this.raw(name);
    return { what: r?.what ?? `--${name}`, items: (r?.values ?? []).flatMap((v) => v.split(',')).map((s) => s.trim()) };
  }

  /** Every value of a 'repeated' flag, whole. */
  all(name: string): { what: string; items: string[] } {
    const r = this.raw(name);
    return { what: r?.what ?? `--${name}`, items: [...(r?.values ?? [])] };
  }

  bool(name: string): boolean {
    const { value, what } = this.required(name);
    const v = value.toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new InvalidArgumentError(what, value, 'must be true or false (or 1 or 0)');
  }

  lookup(name: string): Raw | undefined {
    return this.raw(name);
  }
}

/** A decimal integer from min to max (digits only: no sign, no spaces, no exponent). */
export function integerInRange(value: string, what: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(what, value, `must be an integer from ${min} to ${max}`);
  return n;
}

export function nonEmpty(value: string, what: string): string {
  if (value.trim() === '') throw new InvalidArgumentError(what, value, 'must not be empty');
  return value;
}

/** Help text: usage, paragraphs, then every flag with its argument, variable and default. */
export function helpText(usage: string, paragraphs: readonly string[], flags: readonly FlagSpec[], envPrefix: string, extra: readonly string[] = []): string {
  const lines = [usage, ''];
  for (const p of paragraphs) lines.push(...wrap(p, 0), '');
  lines.push(...extra, 'Options:');
  for (const f of flags) {
    const name = f.short ? `-${f.short}, --${f.name}` : `--${f.name}`;
    const usageLine = f.kind === 'boolean' ? `${name}[=true|false], --no-${f.name}` : `${name} ${f.arg ?? 'VALUE'}`;
    lines.push(`  ${usageLine}`, ...wrap(f.help, 6), `      env ${envName(envPrefix, f.name)}${f.default === undefined ? '' : `, default ${f.default === '' ? '""' : f.default}`}`);
  }
  lines.push('  -h, --help', '      print this help and exit', '  --version', '      print the version and exit', '');
  return lines.join('\n');
}

/**
 * The same flags as a Markdown table (the README's flag reference), so the documentation is made
 * from the table that drives the parser and --help and cannot drift from them.
 */
export function flagTableMarkdown(flags: readonly FlagSpec[], envPrefix: string): string {
  const cell = (text: string): string => text.replaceAll('|', '\\|');
  const lines = ['| Flag | Variable | Default | What it does |', '|---|---|---|---|'];
  for (const f of flags) {
    const usage = f.kind === 'boolean' ? `--${f.name}` : `--${f.name} ${f.arg ?? 'VALUE'}`;
    const dflt = f.default === undefined ? '' : f.default === '' ? '`""`' : `\`${f.default}\``;
    lines.push(`| \`${cell(usage)}\` | \`${envName(envPrefix, f.name)}\` | ${cell(dflt)} | ${cell(f.help)} |`);
  }
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, indent: number, width = 96): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      out.push(' '.repeat(indent) + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') out.push(' '.repeat(indent) + line);
  return out;
}
