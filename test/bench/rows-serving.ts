// Serving-core benchmarks: the memory one process needs per served VM (PSS with 1 and with 101 attachments) against a
// `serve` process per VM, side by side in one run.
//
// Pods: cheap bench pods (pods.ts) set up in-process as masquerade (bridge k6t-eth0 10.0.2.1/24, DHCPv4 planned).
// The serving process is test/helpers/serve-many.ts (one ServingCore, attachments added on stdin); PSS comes from
// /proc/PID/smaps_rollup (shared pages, e.g. the node binary, are split between the processes mapping them, so the one
// `serve` process and the serving process are measured while both run). Each figure is the median of 3 samples 1 s
// apart, taken after a full GC of the serving process and 12 s idle (see settled). The per-VM figure is judged on the
// anonymous part: the file-backed part is code shared with every node process of the machine and does not grow with
// attachments, but its share moves with whatever else runs (other tests' node processes on this shared machine).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSetup } from '../../agent/apply/setup.js';
import { createNetlinkDriver } from '../../agent/drivers/netlink-driver.js';
import { deleteNetns, run, waitFor } from '../helpers/netns.js';
import { startServeMany, type ServeMany } from '../helpers/serve-many-client.js';
import { benchVmi, makeBenchPod, type BenchPod } from './pods.js';
import { shippedProgram, type BenchEnv } from './rows-setup.js';
import { CLIENT_WARM_UP_DORAS, DORAS_PER_ROUND, PERFDHCP_CLIENTS, WARM_UP_DORAS, dnsmasqSide, dora, perfdhcp, pinServer, placements, relayOn, type DhcpSide } from './rows-dhcp.js';
import { describeStalls, watchStalls } from './stalls.js';
import { interleave, median, quantile } from './stats.js';
import { skipped, type Row } from './table.js';

/** Attachments the many-VM figure is taken with (one more than the per-VM divisor). */
const MANY = 101;

interface ServedPod {
  readonly pod: BenchPod;
  /** The VMI folder setup wrote (state.json). */
  readonly stateDir: string;
}

let uid = 0;

/** A bench pod set up in-process as a masquerade VM; its state folder. */
async function servedPod(env: BenchEnv): Promise<ServedPod> {
  const pod = await makeBenchPod(env.workDir);
  try {
    const vmiUid = `serving-${process.pid}-${uid++}`;
    const stateRoot = join(env.workDir, 'serving-state');
    const driver = createNetlinkDriver({ netns: { netnsPath: pod.pod.path } });
    try {
      const result = await runSetup(driver, {
        vmi: benchVmi(vmiUid, { masquerade: true }),
        config: {},
        phase: 'start',
        arch: 'amd64',
        stateRoot,
        discover: { resolvConfPath: '/dev/null', hostname: 'benchvmi', networkStatusPath: '/nonexistent', networkInfoPath: '/nonexistent' },
        dryRun: false,
      });
      if (result.plan.errors.length > 0) throw new Error(`bench VMI does not plan: ${JSON.stringify(result.plan.errors)}`);
    } finally {
      driver.close();
    }
    return { pod, stateDir: join(stateRoot, vmiUid) };
  } catch (error) {
    await pod.cleanup();
    throw error;
  }
}

/** Pss (or Pss_Anon) in kB of a process, from /proc/PID/smaps_rollup. */
function pssKb(pid: number, field: 'Pss' | 'Pss_Anon' = 'Pss'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/smaps_rollup`);
  return Number(match[1]);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Memory of the serving process and of serve at one moment. */
interface Sample {
  /** Pss and its anonymous part of the serving process, kB. */
  readonly server: number;
  readonly serverAnon: number;
  /** V8 heap in use right after the full GC, kB. */
  readonly serverHeap: number;
  readonly serve: number;
}

/**
 * Memory of the serving process and of serve, each the median of 3 samples 1 s apart. Before sampling, the serving
 * process runs a full garbage collection and is left idle for 12 s, long enough for V8's memory reducer to hand
 * freed pages back (seen after ~9 s here): what is measured is what the attachments keep, not how far the young
 * generation grew while they were added (without this the figure swung by ±2.5 MiB between runs).
 */
async function settled(server: ServeMany, servePid: number): Promise<Sample> {
  const gc = await server.request({ op: 'gc' });
  if (gc['ok'] !== true) throw new Error('serve-many cannot collect garbage (started without --expose-gc)');
  const heapUsed = Number((gc['memory'] as { heapUsed?: number } | undefined)?.heapUsed ?? Number.NaN);
  await sleep(12_000);
  const samples = { server: [] as number[], serverAnon: [] as number[], serve: [] as number[] };
  for (let i = 0; i < 3; i++) {
    samples.server.push(pssKb(server.pid));
    samples.serverAnon.push(pssKb(server.pid, 'Pss_Anon'));
    samples.serve.push(pssKb(servePid));
    if (i < 2) await sleep(1000);
  }
  return { server: median(samples.server), serverAnon: median(samples.serverAnon), serverHeap: heapUsed / 1024, serve: median(samples.serve) };
}

const kib = (kb: number): string => `${kb.toFixed(0)} KiB`;
const mib = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;

async function addAll(server: ServeMany, pods: readonly ServedPod[], from: number): Promise<void> {
  for (let i = from; i < pods.length; i++) {
    const pod = pods[i]!;
    const answer = await server.request({ op: 'add', id: `vm${i}`, netns: pod.pod.pod.path, stateDir: pod.stateDir });
    if (answer['ok'] !== true) throw new Error(`serve-many could not add vm${i}: ${String(answer['error'])}`);
  }
}

const ms = (v: number): string => `${v.toFixed(3)} ms`;

/**
 * DORA latency against one attachment of a process serving 101, vs dnsmasq serving one pod (rows-dhcp.ts's
 * topology, client and placements), then perfdhcp at 2000/s against that attachment while the others idle.
 */
async function dhcpAtScale(env: BenchEnv, serverPid: number, pod: BenchPod): Promise<Row[]> {
  const rows: Row[] = [];
  if ((await run(['dnsmasq', '--version'])).code !== 0) return [skipped(`DHCP DORA with ${MANY} attachments vs dnsmasq`, '≤ 1.2×', 'dnsmasq is not installed')];
  const relay = await relayOn(pod);
  const ours: DhcpSide = { name: 'ours', pod, relay, server: { pid: serverPid }, cleanup: () => deleteNetns(relay.name) };
  let dnsmasq: DhcpSide | undefined;
  try {
    dnsmasq = await dnsmasqSide(env);
    const sides = [ours, dnsmasq];
    for (const side of sides) await dora(side, WARM_UP_DORAS);
    const everyOurs: number[] = [];
    for (const placement of placements()) {
      for (const side of sides) await pinServer(side, placement.serverCpu);
      const all = new Map<string, number[]>();
      const lost = new Map<string, number>();
      const stalls = watchStalls();
      await interleave(
        sides.map((side) => ({
          name: side.name,
          run: async () => {
            const r = await dora(side, DORAS_PER_ROUND, placement.clientCpu, CLIENT_WARM_UP_DORAS);
            all.set(side.name, [...(all.get(side.name) ?? []), ...r.latenciesMs]);
            lost.set(side.name, (lost.get(side.name) ?? 0) + r.lost);
            return median(r.latenciesMs);
          },
        })),
        env.rounds,
      );
      const o = all.get('ours') ?? [];
      const d = all.get(dnsmasq.name) ?? [];
      everyOurs.push(...o);
      rows.push({
        what: `DHCP DORA p50, one attachment of a process serving ${MANY}, ${placement.name}, vs dnsmasq serving one`,
        agent: ms(median(o)),
        baseline: ms(median(d)),
        ratio: median(o) / median(d),
        target: placement.judged ? '≤ 1.2×' : '-',
        met: placement.judged ? median(o) <= 1.2 * median(d) : null,
        note: `p99 ours ${ms(quantile(o, 0.99))}, dnsmasq ${ms(quantile(d, 0.99))}; lost: ours ${lost.get('ours') ?? 0}, dnsmasq ${lost.get(dnsmasq.name) ?? 0} of ${DORAS_PER_ROUND * env.rounds} each; ${describeStalls(stalls.stop())}`,
      });
    }
    for (const side of sides) await pinServer(side, null);
    rows.push({ what: `DHCP DORA p99 (every placement), one attachment of ${MANY}`, agent: ms(quantile(everyOurs, 0.99)), baseline: '-', ratio: null, target: '≤ 1 ms', met: quantile(everyOurs, 0.99) <= 1 });
    if ((await run(['perfdhcp', '-h'])).code !== -1) {
      const stalls = watchStalls();
      const p = await perfdhcp(ours, 2000, 5);
      rows.push({
        what: `perfdhcp -r 2000 -R ${PERFDHCP_CLIENTS} for 5 s against one attachment while ${MANY - 1} idle: drops`,
        agent: `${p.dropPct.toFixed(2)} % (${p.rate.toFixed(0)}/s)`,
        baseline: '-',
        ratio: null,
        target: '0 % drops',
        met: p.dropPct === 0,
        note: `packets answered / sent: ${p.received}/${p.sent}; ${describeStalls(stalls.stop())}`,
      });
    }
  } finally {
    await ours.cleanup().catch(() => undefined);
    await dnsmasq?.cleanup().catch(() => undefined);
  }
  return rows;
}

export async function servingRows(env: BenchEnv): Promise<Row[]> {
  const memoryRow = `memory per served VM: one process serving ${MANY} vs 1 attachments, vs a serve process per VM`;
  const pods: ServedPod[] = [];
  const made: BenchPod[] = [];
  let server: ServeMany | undefined;
  let serve: ChildProcess | undefined;
  try {
    env.log(`serving: ${MANY + 1} masquerade pods…`);
    for (let i = 0; i < MANY + 1; i++) {
      const pod = await servedPod(env);
      made.push(pod.pod);
      pods.push(pod);
    }
    const own = pods.pop()!;

    // The per-VM process: serve for its own pod, as virt-launcher runs it.
    serve = spawn(process.execPath, [shippedProgram(env), 'serve', '--state-dir', own.stateDir, '--netns', own.pod.pod.path], { stdio: ['ignore', 'ignore', 'pipe'] });
    let serveErr = '';
    serve.stderr?.on('data', (chunk: Buffer) => (serveErr += chunk.toString()));
    await waitFor(async () => {
      if (serve!.exitCode !== null) throw new Error(`serve exited ${serve!.exitCode}: ${serveErr}`);
      return (await run(['ip', 'netns', 'exec', own.pod.pod.name, 'ss', '-Huln', 'sport = :67'])).stdout.trim() !== '';
    }, { timeoutMs: 120_000, intervalMs: 250, what: 'serve listening' });

    server = await startServeMany(join(env.workDir, 'serve-many.log'), ['--expose-gc']);
    await addAll(server, pods.slice(0, 1), 0);
    const first = await settled(server, serve.pid ?? 0);
    await addAll(server, pods, 1);
    const second = await settled(server, serve.pid ?? 0);
    const perVm = (second.serverAnon - first.serverAnon) / (MANY - 1);
    const perVmTotal = (second.server - first.server) / (MANY - 1);
    const perVmHeap = (second.serverHeap - first.serverHeap) / (MANY - 1);
    const servePss = median([first.serve, second.serve]);
    const rows: Row[] = [
      {
        what: memoryRow,
        agent: `${kib(perVm)} per VM`,
        baseline: `${mib(servePss)} (serve)`,
        ratio: perVm / servePss,
        target: '≤ 128 KiB per VM',
        met: perVm <= 128,
        note:
          `per VM = growth of the serving process's anonymous PSS (Pss_Anon: ${mib(first.serverAnon)} with 1, ${mib(second.serverAnon)} with ${MANY} attachments, DHCPv4 each) ÷ ${MANY - 1}; ` +
          `total PSS ${mib(first.server)} → ${mib(second.server)} (${kib(perVmTotal)} per VM: its file-backed part is the node binary's pages, shared with every node process on the machine, so it moves with what else runs); ` +
          `V8 heap in use after a full GC ${mib(first.serverHeap)} → ${mib(second.serverHeap)} (${kib(perVmHeap)} per VM); one serve process ${mib(first.serve)} / ${mib(second.serve)} at the same two moments; serve is ${(servePss / perVm).toFixed(0)}× the per-VM cost`,
      },
    ];
    serve.kill('SIGKILL');
    rows.push(...(await dhcpAtScale(env, server.pid, pods[Math.floor(pods.length / 2)]!.pod)));
    return rows;
  } catch (error) {
    return [skipped(memoryRow, '≤ 128 KiB per VM', `failed: ${error instanceof Error ? error.message : String(error)}`.slice(0, 400))];
  } finally {
    serve?.kill('SIGKILL');
    await server?.stop().catch(() => undefined);
    for (const pod of made) await pod.cleanup().catch(() => undefined);
  }
}
