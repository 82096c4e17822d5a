// Runs the whole vitest suite and ends with one plain "N passed, N failed, N skipped" line; exits non-zero if any run failed.
//
// Two runs: every file but the ones in ALONE (vitest runs those files in parallel, one per core), then each ALONE file
// by itself. A live migration runs two TCG guests and a 10 ms probe; sharing this 2-core machine with another test file
// slows the guests past what the test measures (CI saw a target guest stop answering and a renewal land late).
// With arguments (a file filter, -t …) there is one run with them, as plain vitest would do.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';

const ALONE = ['test/e2e/migration.test.ts', 'test/e2e/ovn-migration.test.ts'];
const extra = process.argv.slice(2);

mkdirSync('dist', { recursive: true });

function vitest(resultsPath, args, rest) {
  rmSync(resultsPath, { force: true });
  const run = spawnSync(
    process.execPath,
    ['node_modules/vitest/vitest.mjs', 'run', '--passWithNoTests', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsPath}`, ...args, ...rest],
    { stdio: 'inherit' },
  );
  try {
    return { status: run.status ?? 1, results: JSON.parse(readFileSync(resultsPath, 'utf8')) };
  } catch {
    // vitest died before writing results: its own output says why.
    return { status: run.status ?? 1, results: null };
  }
}

const runs = [];
if (extra.length > 0) {
  runs.push(vitest('dist/test-results.json', [], extra));
} else {
  runs.push(vitest('dist/test-results.json', ALONE.map((file) => `--exclude=${file}`), []));
  ALONE.forEach((file, i) => runs.push(vitest(`dist/test-results-alone-${i}.json`, [file], [])));
}

let summary = 'no test results';
if (runs.every((r) => r.results !== null)) {
  const sum = (key) => runs.reduce((n, r) => n + r.results[key], 0);
  summary = `${sum('numPassedTests')} passed, ${sum('numFailedTests')} failed, ${sum('numPendingTests') + sum('numTodoTests')} skipped`;
}
console.log(summary);
process.exit(runs.find((r) => r.status !== 0)?.status ?? 0);
