import { parseArgs } from 'node:util';
import { twillVersion } from './version.js';

export type CommonFlags =
  | { readonly done: true; readonly exitCode: number }
  | { readonly done: false; readonly positionals: string[] };

/**
 * The flags every Twill binary answers the same way: --help prints `help` and --version the
 * version (exit 0); an unknown flag is a usage error (exit 2). Otherwise the caller carries on
 * with the positionals.
 */
export function handleCommonFlags(program: string, argv: string[], help: string, allowPositionals = false): CommonFlags {
  let parsed: { values: { help?: boolean; version?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
      strict: true,
      allowPositionals,
    });
  } catch (err) {
    process.stderr.write(`${program}: ${(err as Error).message}\nTry '${program} --help'.\n`);
    return { done: true, exitCode: 2 };
  }
  if (parsed.values.help === true) {
    process.stdout.write(help);
    return { done: true, exitCode: 0 };
  }
  if (parsed.values.version === true) {
    process.stdout.write(`${program} ${twillVersion()}\n`);
    return { done: true, exitCode: 0 };
  }
  return { done: false, positionals: parsed.positionals };
}
