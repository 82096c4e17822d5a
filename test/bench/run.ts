// `npm run bench`: runs the side-by-side benchmarks (each row measures agent and baseline interleaved in the same run) and prints one table.
//
// It builds nothing: run `npm run build` first (it runs dist/test/bench/run.js and spawns dist/agent/cli/cli.js).
// Flags: --rounds N (default 7), --only setup,cold,scale,datapath,dhcp,serving,cni,cri,metrics,migration,ovn-migration, --iperf-seconds S (default 3),
//        --dhcp-exchanges N (serve RSS after N exchanges, default 10000), --markdown FILE (also write the table as markdown).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { netnsAvailable } from '../helpers/netns.js';
import { datapathRows } from './rows-datapath.js';
import { dhcpRows } from './rows-dhcp.js';
import { cniRows } from './rows-cni.js';
import { criRows } from './rows-cri.js';
import { metricsRows } from './rows-metrics.js';
import { migrationRows } from './rows-migration.js';
import { ovnMigrationRows } from './rows-ovn-migration.js';
import { servingRows } from './rows-serving.js';
import { coldRows, scaleRows, setupRows, type BenchEnv } from './rows-setup.js';
import { renderMarkdown, renderText, skipped, type Row } from './table.js';

const GROUPS = ['setup', 'cold', 'scale', 'datapath', 'dhcp', 'serving', 'cni', 'cri', 'metrics', 'migration', 'ovn-migration'] as const;
type Group = (typeof GROUPS)[number];

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { rounds: { type: 'string' }, only: { type: 'string' }, 'iperf-seconds': { type: 'string' }, markdown: { type: 'string' }, 'dhcp-exchanges': { type: 'string' } },
    strict: true,
  });
  const rounds = Number(values.rounds ?? '7');
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: expected a positive integer, got ${String(values.rounds)}`);
  const only = (values.only ?? GROUPS.join(',')).split(',') as Group[];
  for (const g of only) if (!GROUPS.includes(g)) throw new Error(`--only: unknown group ${g} (groups: ${GROUPS.join(', ')})`);
  const iperfSeconds = Number(values['iperf-seconds'] ?? '3');
  const cli = join(process.cwd(), 'dist/agent/cli/cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first (npm run bench builds nothing)`);

  const workDir = mkdtempSync(join(tmpdir(), 'vna-bench-'));
  const env: BenchEnv = { workDir, rounds, cli, log: (m) => process.stderr.write(`bench: ${m}\n`) };
  const machine = `${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), kernel ${release()}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at start, node ${process.version}, ${rounds} rounds`;
  env.log(machine);
  const rows: Row[] = [];
  try {
    const groups: Record<Group, () => Promise<Row[]>> = {
      setup: () => setupRows(env),
      cold: () => coldRows(env),
      scale: () => scaleRows(env),
      datapath: () => datapathRows(env, iperfSeconds),
      dhcp: () => dhcpRows(env, Number(values['dhcp-exchanges'] ?? '10000')),
      serving: () => servingRows(env),
      cni: () => cniRows(env),
      cri: () => criRows(env),
      metrics: () => metricsRows(env),
      migration: () => migrationRows(env),
      'ovn-migration': () => ovnMigrationRows(env),
    };
    for (const group of only) {
      if (!netnsAvailable()) {
        rows.push(skipped(group, '-', 'needs root and `ip netns`'));
        continue;
      }
      env.log(`running ${group}…`);
      try {
        const groupRows = await groups[group]();
        rows.push(...groupRows);
        // Partial results survive an interrupted run.
        process.stderr.write(renderText(groupRows));
      } catch (err) {
        rows.push(skipped(group, '-', `failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 400)));
      }
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  process.stdout.write(`${machine}\n\n${renderText(rows)}`);
  if (values.markdown !== undefined) writeFileSync(values.markdown, `${machine}\n\n${renderMarkdown(rows)}`);
  return 0;
}

// An interrupted run still deletes its namespaces (test/helpers/netns.ts sweeps them on 'exit') and kills its servers.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
