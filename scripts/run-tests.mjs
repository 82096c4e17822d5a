// Runs the whole vitest suite and ends with one plain "N passed, N failed, N skipped" line; exits with vitest's status.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
const resultsPath = 'dist/test-results.json';
const run = spawnSync(
  process.execPath,
  ['node_modules/vitest/vitest.mjs', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsPath}`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
let summary = 'no test results';
try {
  const results = JSON.parse(readFileSync(resultsPath, 'utf8'));
  const skipped = results.numPendingTests + results.numTodoTests;
  summary = `${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped`;
} catch {
  // vitest died before writing results: its own output says why.
}
console.log(summary);
process.exit(run.status ?? 1);
