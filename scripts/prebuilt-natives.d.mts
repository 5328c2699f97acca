// Types of prebuilt-natives.mjs, for the unit tests that import it.
import type { Plugin } from 'esbuild';

export function koffiModule(bundle: string, fail: (message: string) => never): string;
export function withPrebuiltNetlinkBinding(source: string, file: string, bundle: string, fail: (message: string) => never): string;
export function prebuiltNatives(bundle: string, fail: (message: string) => never): Plugin;
