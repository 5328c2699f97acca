// Types of bundle-loaded.mjs, for the unit tests that import it.
export function asciiOnly(text: string): string;
export function wrapForLoader(script: string): string | undefined;
export function finishLoadedBundle(opts: {
  output: string;
  loaderSource: string;
  loader: string;
  codeCache: string;
  fail: (message: string) => never;
}): { id: string; bytes: number };
