// Setup benchmarks: warm in-process agent vs a batch script vs KubeVirt's process-per-step; cold CLI vs bare node; N bridge networks.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createNetlinkDriver } from '../../agent/drivers/netlink-driver.js';
import type { KernelAction } from '../../agent/apply/kernel-actions.js';
import { runSetup, type SetupRequest } from '../../agent/apply/setup.js';
import { benchVmi, makeBenchPod, type BenchPod } from './pods.js';
import { batchScript, perStepScript, processCount } from './script-baseline.js';
import { interleave, median, msSince, p90 } from './stats.js';
import { fmtMs, type Row } from './table.js';

export interface BenchEnv {
  readonly workDir: string;
  readonly rounds: number;
  readonly cli: string;
  log(message: string): void;
}

let uidCounter = 0;

function request(env: BenchEnv, pod: BenchPod, vmi: object, dryRun: boolean, networkStatusPath?: string): SetupRequest {
  return {
    vmi,
    config: {},
    phase: 'start',
    arch: 'amd64',
    stateRoot: mkdtempSync(join(env.workDir, 'state-')),
    discover: { resolvConfPath: '/dev/null', hostname: 'benchvmi', networkStatusPath: networkStatusPath ?? '/nonexistent', networkInfoPath: '/nonexistent' },
    dryRun,
  };
}

/** Runs setup in-process against the pod; returns the elapsed ms (driver open to close) and the actions. */
async function agentSetup(env: BenchEnv, pod: BenchPod, vmi: object, dryRun: boolean, networkStatusPath?: string): Promise<{ ms: number; cpuMs: number; actions: readonly KernelAction[] }> {
  const start = process.hrtime.bigint();
  const cpuStart = selfCpuMs();
  const driver = createNetlinkDriver({ netns: { netnsPath: pod.pod.path } });
  try {
    const result = await runSetup(driver, request(env, pod, vmi, dryRun, networkStatusPath));
    if (result.plan.errors.length > 0) throw new Error(`bench VMI does not plan: ${JSON.stringify(result.plan.errors)}`);
    return { ms: msSince(start), cpuMs: selfCpuMs() - cpuStart, actions: result.actions };
  } finally {
    driver.close();
  }
}

/** Wall and CPU time of one measured run; CPU counts user+system of the process and the children it waited for. */
export interface Timing {
  readonly wallMs: number;
  readonly cpuMs: number;
}

/** This process's CPU ms so far, including reaped children (/proc/self/stat cutime+cstime, 10 ms ticks). */
export function selfCpuMs(): number {
  const own = process.cpuUsage();
  const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  const childTicks = Number(fields[13] ?? 0) + Number(fields[14] ?? 0);
  return (own.user + own.system) / 1000 + childTicks * 10;
}

/** Runs argv under bash's `time`; resolves with wall ms and the child's CPU ms (user+sys incl. its children); rejects on a non-zero exit. */
export function timedProcess(argv: readonly string[]): Promise<Timing> {
  const timeFile = join(tmpdir(), `vna-bench-time-${process.pid}-${Math.random().toString(16).slice(2)}`);
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    // bash's `time` keyword: user and system CPU of the command and its children in ms (GNU time's %U %S are
    // 10 ms ticks, which read 0 for a fast script and made the CPU ratio infinite).
    const timed = 'TIMEFORMAT="%3U %3S"; { time "$@" 2>&3 >/dev/null; } 3>&2 2>"$VNA_TIME_FILE"';
    const child = spawn('bash', ['-c', timed, 'bash', ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, VNA_TIME_FILE: timeFile } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = msSince(start);
      let cpuMs = Number.NaN;
      try {
        const [user = 'NaN', sys = 'NaN'] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()?.split(' ') ?? [];
        cpuMs = (Number(user) + Number(sys)) * 1000;
        rmSync(timeFile, { force: true });
      } catch {
        // Keep NaN: the row shows it.
      }
      if (code === 0) resolve({ wallMs, cpuMs });
      else reject(new Error(`${argv.join(' ')} exited ${String(code)}: ${stderr.trim().split('\n').slice(0, 3).join(' | ')}`));
    });
  });
}

/** Runs `fn` on a fresh masquerade bench pod and always deletes the pod. */
async function onFreshPod<T>(env: BenchEnv, secondaries: number, fn: (pod: BenchPod) => Promise<T>): Promise<T> {
  const pod = await makeBenchPod(env.workDir, secondaries);
  try {
    return await fn(pod);
  } finally {
    await pod.cleanup();
  }
}

/** CPU ms per contender, filled next to the wall-time samples the interleaved runner keeps. */
type CpuLog = Map<string, number[]>;
function logCpu(cpu: CpuLog, name: string, ms: number): void {
  cpu.set(name, [...(cpu.get(name) ?? []), ms]);
}

/** The Multus network-status file of a bench pod, in a fresh directory. */
function networkStatusFile(env: BenchEnv, pod: BenchPod): string {
  const statusPath = join(mkdtempSync(join(env.workDir, 'status-')), 'network-status');
  writeFileSync(statusPath, pod.networkStatus);
  return statusPath;
}

/** The VMI for a bench pod: masquerade on the pod network, bridge binding on every secondary. */
function scaleVmi(pod: BenchPod): object {
  return benchVmi(`scale-${process.pid}-${uidCounter++}`, { masquerade: true, ports: [80], secondaries: pod.secondaries });
}

function scriptRunner(env: BenchEnv, kind: 'batch' | 'per-step', vmi: (pod: BenchPod) => object, cpu: CpuLog, secondaries = 0): (round: number) => Promise<number> {
  return (round) =>
    onFreshPod(env, secondaries, async (pod) => {
      // The same work as the agent: the actions the agent computes for this very pod (untimed dry run).
      const { actions } = await agentSetup(env, pod, vmi(pod), true, secondaries > 0 ? networkStatusFile(env, pod) : undefined);
      const dir = mkdtempSync(join(env.workDir, `${kind}-`));
      const scriptPath = join(dir, 'setup.sh');
      if (kind === 'batch') {
        const b = batchScript(actions, join(dir, 'links.batch'), join(dir, 'rules.nft'));
        writeFileSync(join(dir, 'links.batch'), b.ipBatch);
        writeFileSync(join(dir, 'rules.nft'), b.nft);
        writeFileSync(scriptPath, b.script);
      } else {
        writeFileSync(scriptPath, perStepScript(actions));
      }
      const timing = await timedProcess(['nsenter', `--net=${pod.pod.path}`, 'sh', scriptPath]);
      if (round === 0) env.log(`${kind}: ${kind === 'batch' ? 2 : processCount(perStepScript(actions))} ip/nft processes for ${actions.length} actions`);
      logCpu(cpu, kind, timing.cpuMs);
      return timing.wallMs;
    });
}

export async function setupRows(env: BenchEnv): Promise<Row[]> {
  const vmi = (): object => benchVmi(`bench-${process.pid}-${uidCounter++}`, { masquerade: true, ports: [80, 443, 5201] });
  // One unmeasured warm-up so module loading and JIT are not in the first sample.
  await onFreshPod(env, 0, (pod) => agentSetup(env, pod, vmi(), false));
  const cpu: CpuLog = new Map();
  const samples = await interleave(
    [
      {
        name: 'agent',
        run: () =>
          onFreshPod(env, 0, async (pod) => {
            const r = await agentSetup(env, pod, vmi(), false);
            logCpu(cpu, 'agent', r.cpuMs);
            return r.ms;
          }),
      },
      { name: 'batch', run: scriptRunner(env, 'batch', () => vmi(), cpu) },
      { name: 'per-step', run: scriptRunner(env, 'per-step', () => vmi(), cpu) },
    ],
    env.rounds,
  );
  const cpuOf = (name: string): number => median(cpu.get(name) ?? []);
  const agent = samples.get('agent') ?? [];
  const batch = samples.get('batch') ?? [];
  const perStep = samples.get('per-step') ?? [];
  return [
    {
      what: 'masquerade setup, warm, vs ip -batch + nft -f script',
      agent: fmtMs(median(agent), p90(agent)),
      baseline: fmtMs(median(batch), p90(batch)),
      ratio: median(agent) / median(batch),
      target: '≤ 1.0×',
      met: median(agent) <= median(batch),
    },
    {
      what: 'masquerade setup, warm, vs process per step (KubeVirt)',
      agent: fmtMs(median(agent), p90(agent)),
      baseline: fmtMs(median(perStep), p90(perStep)),
      ratio: median(agent) / median(perStep),
      target: '≤ 0.2× (≥ 5× faster)',
      met: median(agent) * 5 <= median(perStep),
    },
    {
      what: 'same, CPU time (user+sys incl. children): agent vs batch script',
      agent: `${cpuOf('agent').toFixed(1)} ms`,
      baseline: `${cpuOf('batch').toFixed(1)} ms`,
      ratio: cpuOf('agent') / cpuOf('batch'),
      target: '≤ 1.0×',
      met: cpuOf('agent') <= cpuOf('batch'),
    },
    {
      what: 'same, CPU time: agent vs process per step',
      agent: `${cpuOf('agent').toFixed(1)} ms`,
      baseline: `${cpuOf('per-step').toFixed(1)} ms`,
      ratio: cpuOf('agent') / cpuOf('per-step'),
      target: '≤ 0.2×',
      met: cpuOf('agent') * 5 <= cpuOf('per-step'),
    },
  ];
}

/** dist/virt-net-agent.mjs, two levels above env.cli (dist/agent/cli/cli.js), when built. */
function bundleOf(env: BenchEnv): string | null {
  const bundle = join(dirname(dirname(dirname(env.cli))), 'virt-net-agent.mjs');
  return existsSync(bundle) ? bundle : null;
}

/** The program the image runs (the bundle), or the module tree when no bundle was built. */
export function shippedProgram(env: BenchEnv): string {
  return bundleOf(env) ?? env.cli;
}

/** The programs a cold setup is timed with: the bundle the image ships, and the module tree tsc leaves in dist/. */
function coldPrograms(env: BenchEnv): { name: string; program: string }[] {
  const bundle = bundleOf(env);
  return [...(bundle !== null ? [{ name: 'bundle', program: bundle }] : []), { name: 'tree', program: env.cli }];
}

export async function coldRows(env: BenchEnv): Promise<Row[]> {
  const cpu: CpuLog = new Map();
  const programs = coldPrograms(env);
  const samples = await interleave(
    [
      ...programs.map(({ name, program }) => ({
        name,
        run: () =>
          onFreshPod(env, 0, async (pod) => {
            const dir = mkdtempSync(join(env.workDir, 'cold-'));
            const vmiPath = join(dir, 'vmi.json');
            writeFileSync(vmiPath, JSON.stringify(benchVmi(`cold-${process.pid}-${uidCounter++}`, { masquerade: true, ports: [80] })));
            const t = await timedProcess([process.execPath, program, 'setup', '--vmi', vmiPath, '--netns', pod.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null', '--hostname', 'benchvmi']);
            logCpu(cpu, name, t.cpuMs);
            return t.wallMs;
          }),
      })),
      {
        name: 'node',
        run: async () => {
          const t = await timedProcess([process.execPath, '-e', '']);
          logCpu(cpu, 'node', t.cpuMs);
          return t.wallMs;
        },
      },
    ],
    env.rounds,
  );
  const bare = samples.get('node') ?? [];
  const bareCpu = median(cpu.get('node') ?? []);
  return programs.flatMap(({ name }, index): Row[] => {
    const wall = samples.get(name) ?? [];
    const cpuMs = median(cpu.get(name) ?? []);
    const label = name === 'bundle' ? 'dist/virt-net-agent.mjs, as shipped' : 'dist/agent/cli/cli.js module tree';
    // The first program is the one the target applies to (the bundle when built); the other is for comparison.
    const judged = index === 0;
    return [
      {
        what: `cold \`virt-net-agent setup\` process (${label}) vs \`node -e ''\``,
        agent: fmtMs(median(wall), p90(wall)),
        baseline: fmtMs(median(bare), p90(bare)),
        ratio: median(wall) / median(bare),
        target: judged ? '≤ 2.0×' : '-',
        met: judged ? median(wall) <= 2 * median(bare) : null,
      },
      {
        what: `same, CPU time (user+sys incl. nft children), ${name}`,
        agent: `${cpuMs.toFixed(0)} ms`,
        baseline: `${bareCpu.toFixed(0)} ms`,
        ratio: cpuMs / bareCpu,
        target: judged ? '≤ 2.0×' : '-',
        met: judged ? cpuMs <= 2 * bareCpu : null,
      },
    ];
  });
}

export async function scaleRows(env: BenchEnv, counts: readonly number[] = [1, 8, 32, 64]): Promise<Row[]> {
  const last = counts[counts.length - 1] ?? 64;
  const contenders: { name: string; run: (round: number) => Promise<number> }[] = counts.map((n) => ({
    name: String(n),
    run: () => onFreshPod(env, n, async (pod) => (await agentSetup(env, pod, scaleVmi(pod), false, networkStatusFile(env, pod))).ms),
  }));
  // The same kernel work for the largest count as one `ip -batch` + `nft -f` script: what the kernel takes, measured.
  const batchName = `batch-${last}`;
  contenders.push({ name: batchName, run: scriptRunner(env, 'batch', scaleVmi, new Map(), last) });
  // Warm-up with the smallest count.
  await contenders[0]?.run(0);
  const samples = await interleave(contenders, env.rounds);
  const perNet = (n: number): number => median(samples.get(String(n)) ?? []) / (n + 1);
  const base = perNet(counts[0] ?? 1);
  const rows: Row[] = counts.map((n) => {
    const s = samples.get(String(n)) ?? [];
    return {
      what: `${n} bridge secondaries + masquerade pod network, warm: per network`,
      agent: `${perNet(n).toFixed(2)} ms/net (total ${fmtMs(median(s), p90(s))})`,
      baseline: `${base.toFixed(2)} ms/net at ${counts[0] ?? 1}`,
      ratio: perNet(n) / base,
      target: '≤ 1.0× (flat)',
      met: perNet(n) <= base * 1.0,
    };
  });
  const lastSamples = samples.get(String(last)) ?? [];
  const batchSamples = samples.get(batchName) ?? [];
  const total = median(lastSamples);
  rows.push({ what: `${last} bridge networks, warm: total`, agent: `${total.toFixed(1)} ms`, baseline: '100 ms budget', ratio: total / 100, target: '≤ 1.0× (≤ 100 ms)', met: total <= 100 });
  rows.push({
    what: `${last} bridge networks, warm: agent vs the same actions as one ip -batch + nft -f script`,
    agent: fmtMs(total, p90(lastSamples)),
    baseline: fmtMs(median(batchSamples), p90(batchSamples)),
    ratio: total / median(batchSamples),
    target: '-',
    met: null,
  });
  return rows;
}
