#!/usr/bin/env node
// Prints one closing line for the whole suite ("tests: N passed, N failed, N skipped") from the
// JSON reports each vitest tier wrote to .test-results/, and fails when a tier ran nothing that
// it should have (a tier whose report is missing did not run).
import { readFileSync } from 'node:fs';

const tiers = ['unit', 'netns', 'integration', 'kernel']; // kernel: inside the 6.1 VM (test/vm)
let passed = 0;
let failed = 0;
let skipped = 0;
for (const tier of tiers) {
  let report;
  try {
    report = JSON.parse(readFileSync(`.test-results/${tier}.json`, 'utf8'));
  } catch {
    console.error(`test-summary: no report for the ${tier} tier (.test-results/${tier}.json)`);
    process.exit(1);
  }
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
