// The cni-daemon as every guest's DHCP server (issue 27), side by side in one run: memory per served VM (the daemon's
// PSS with 1 and with 101 attachments) vs a `serve` process per VM; DORA against one of 101 attachments vs dnsmasq
// serving one; perfdhcp at 2000/s against it while the others idle; a kill -9 and restart until all 101 answer.
//
// Pods: cheap bench pods (pods.ts: eth0 10.244.n.5/24, default route via the node end). 101 are plumbed by CNI ADDs of
// our plugin (masquerade, chained: a prevResult as the bridge plugin would give it) through the shim to a daemon
// started from the bundle as shipped (serveDhcp off: it only plumbs), its state root in the bench folder; one more is
// set up in-process and served by `serve`, as virt-launcher runs it.
// Memory: two fresh daemons adopt at start what is recorded, one a state root holding 1 of the attachments, one the
// root holding all 101; both run with node --expose-gc and test/bench/gc-preload.ts (a full GC on SIGUSR2,
// bench-only). Why fresh daemons and not the one that ran the ADDs: running 100 ADDs leaves a high-water mark of
// V8 pages and malloc arenas in a process (~120–200 KiB per ADD here, the same with serving off, and it does not
// keep growing with more ADD/DEL cycles), which is the plumbing's, not what serving a VM keeps; the note gives that
// figure too. PSS comes from /proc/PID/smaps_rollup; each figure is the median of 3 samples 1 s apart, after a full
// GC and 12 s idle (V8's memory reducer hands freed pages back after ~9 s here); per VM is judged on the anonymous
// part: the file-backed part is the node binary's pages, shared with every node process on the machine, and moves
// with whatever else runs (other tests on this shared machine).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { runSetup } from '../../agent/apply/setup.js';
import { createNetlinkDriver } from '../../agent/drivers/netlink-driver.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { BUNDLE } from '../helpers/agent-run.js';
import { runWithEnv, SHIM, socketAccepts } from '../helpers/cni-shim.js';
import { deleteNetns, makeNetns, run, runOk, waitFor, type Netns } from '../helpers/netns.js';
import { benchVmi, makeBenchPod, type BenchPod } from './pods.js';
import { CLIENT_WARM_UP_DORAS, DORAS_PER_ROUND, PERFDHCP_CLIENTS, WARM_UP_DORAS, dnsmasqSide, dora, perfdhcp, pinServer, placements, relayOn, type DhcpSide } from './rows-dhcp.js';
import { shippedProgram, type BenchEnv } from './rows-setup.js';
import { describeStalls, watchStalls } from './stalls.js';
import { interleave, median, quantile } from './stats.js';
import { skipped, type Row } from './table.js';

/** Attachments the daemon serves for the many-VM figures (one more than the per-VM divisor). */
const MANY = 101;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const kib = (kb: number): string => `${kb.toFixed(0)} KiB`;
const mib = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;
const ms = (v: number): string => `${v.toFixed(3)} ms`;

/** Pss (or Pss_Anon) in kB of a process, from /proc/PID/smaps_rollup. */
function pssKb(pid: number, field: 'Pss' | 'Pss_Anon' = 'Pss'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/smaps_rollup`);
  return Number(match[1]);
}

/** The measured daemon: the bundle's cni-daemon with the GC hook preloaded. */
interface Daemon {
  readonly socket: string;
  readonly child: ChildProcess;
  /** Sends SIGUSR2 and resolves with the heap in use after the full GC (bytes). */
  gc(): Promise<number>;
  output(): string;
  kill(): Promise<void>;
}

async function startDaemon(env: BenchEnv, config: string, socket: string): Promise<Daemon> {
  const preload = new URL('./gc-preload.js', import.meta.url).href;
  // VNA_BENCH_DAEMON_NODE_FLAGS: extra node flags for the measured daemon (to try V8 settings; empty by default).
  const extra = (process.env['VNA_BENCH_DAEMON_NODE_FLAGS'] ?? '').split(' ').filter((flag) => flag !== '');
  const child = spawn(process.execPath, [...extra, '--expose-gc', '--import', preload, BUNDLE, 'cni-daemon', '--config', config, '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiting: ((heap: number) => void)[] = [];
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
    for (const match of chunk.toString().matchAll(/\{"gcHeapUsed":(\d+|null)\}/g)) waiting.shift()?.(Number(match[1]));
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`cni-daemon exited ${child.exitCode}: ${err.trim()}`);
    return /"msg":"cni-daemon listening"/.test(out) && (await socketAccepts(socket));
  }, { timeoutMs: 60_000, intervalMs: 20, what: 'the cni-daemon' });
  env.log(`serving: cni-daemon pid ${child.pid ?? '?'}`);
  return {
    socket,
    child,
    output: () => out,
    gc: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the daemon did not answer SIGUSR2 (gc-preload)')), 30_000);
        waiting.push((heap) => {
          clearTimeout(timer);
          resolve(heap);
        });
        child.kill('SIGUSR2');
      }),
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** CNI ADD of our plugin (masquerade, chained after what the bridge plugin would have given the pod) through the shim. */
async function cniAdd(daemon: Daemon, pod: BenchPod, id: string): Promise<void> {
  const prevResult = {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'eth0', mac: pod.podMac, sandbox: pod.pod.path }],
    ips: [{ address: `${pod.podIp}/24`, gateway: pod.nodeIp, interface: 0 }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] },
  };
  const conf = { cniVersion: '1.0.0', name: 'benchserve', type: 'virt-net-agent', binding: 'masquerade', prevResult };
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: pod.pod.path, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', VIRT_NET_AGENT_CNI_SOCKET: daemon.socket, PATH: process.env['PATH'] ?? '' };
  const r = await runWithEnv(SHIM, env, JSON.stringify(conf));
  if (r.code !== 0) throw new Error(`CNI ADD ${id} exited ${String(r.code)}: ${r.stdout.trim().slice(0, 300)}`);
}

/** A bench pod set up in-process as a masquerade VM for `serve`; its state folder. */
async function servePod(env: BenchEnv): Promise<{ pod: BenchPod; stateDir: string }> {
  const pod = await makeBenchPod(env.workDir);
  const uid = `serving-${process.pid}-serve`;
  const stateRoot = join(env.workDir, 'serve-state');
  const driver = createNetlinkDriver({ netns: { netnsPath: pod.pod.path } });
  try {
    const result = await runSetup(driver, {
      vmi: benchVmi(uid, { masquerade: true }),
      config: {},
      phase: 'start',
      arch: 'amd64',
      stateRoot,
      discover: { resolvConfPath: '/dev/null', hostname: 'benchvmi', networkStatusPath: '/nonexistent', networkInfoPath: '/nonexistent' },
      dryRun: false,
    });
    if (result.plan.errors.length > 0) throw new Error(`bench VMI does not plan: ${JSON.stringify(result.plan.errors)}`);
  } catch (error) {
    await pod.cleanup();
    throw error;
  } finally {
    driver.close();
  }
  return { pod, stateDir: join(stateRoot, uid) };
}

interface Sample {
  /** Pss and its anonymous part, kB. */
  readonly pss: number;
  readonly anon: number;
  /** V8 heap in use right after the full GC, kB (daemons only). */
  readonly heap: number;
}

/** Memory of each daemon and of serve at the same moments: a full GC of the daemons, 12 s idle, then the median of 3 samples 1 s apart. */
async function settled(daemons: readonly Daemon[], servePid: number): Promise<{ daemons: Sample[]; serve: Sample }> {
  const heaps = await Promise.all(daemons.map((daemon) => daemon.gc()));
  await sleep(12_000);
  const pids = [...daemons.map((daemon) => daemon.child.pid ?? 0), servePid];
  const pss = pids.map(() => [] as number[]);
  const anon = pids.map(() => [] as number[]);
  for (let i = 0; i < 3; i++) {
    pids.forEach((pid, k) => {
      pss[k]!.push(pssKb(pid));
      anon[k]!.push(pssKb(pid, 'Pss_Anon'));
    });
    if (i < 2) await sleep(1000);
  }
  const sample = (k: number): Sample => ({ pss: median(pss[k]!), anon: median(anon[k]!), heap: (heaps[k] ?? Number.NaN) / 1024 });
  return { daemons: daemons.map((_, k) => sample(k)), serve: sample(daemons.length) };
}

/** DORA against one attachment of the daemon vs dnsmasq serving one pod (rows-dhcp.ts's client and placements); perfdhcp. */
async function dhcpAtScale(env: BenchEnv, daemonPid: number, pod: BenchPod, flooded: BenchPod): Promise<Row[]> {
  const rows: Row[] = [];
  if ((await run(['dnsmasq', '--version'])).code !== 0) return [skipped(`DHCP DORA with ${MANY} attachments vs dnsmasq`, '≤ 1.2×', 'dnsmasq is not installed')];
  const relay = await relayOn(pod);
  const ours: DhcpSide = { name: 'daemon', pod, relay, server: { pid: daemonPid }, cleanup: () => deleteNetns(relay.name) };
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
      const o = all.get(ours.name) ?? [];
      const d = all.get(dnsmasq.name) ?? [];
      everyOurs.push(...o);
      rows.push({
        what: `DHCP DORA p50, one attachment of a cni-daemon serving ${MANY}, ${placement.name}, vs dnsmasq serving one`,
        agent: ms(median(o)),
        baseline: ms(median(d)),
        ratio: median(o) / median(d),
        target: placement.judged ? '≤ 1.2×' : '-',
        met: placement.judged ? median(o) <= 1.2 * median(d) : null,
        note: `p99 daemon ${ms(quantile(o, 0.99))}, dnsmasq ${ms(quantile(d, 0.99))}; lost: daemon ${lost.get(ours.name) ?? 0}, dnsmasq ${lost.get(dnsmasq.name) ?? 0} of ${DORAS_PER_ROUND * env.rounds} each; ${describeStalls(stalls.stop())}`,
      });
    }
    for (const side of sides) await pinServer(side, null);
    rows.push({ what: `DHCP DORA p99 (every placement), one attachment of a cni-daemon serving ${MANY}`, agent: ms(quantile(everyOurs, 0.99)), baseline: '-', ratio: null, target: '≤ 1 ms', met: quantile(everyOurs, 0.99) <= 1 });
    if ((await run(['perfdhcp', '-h'])).code !== -1) {
      const stalls = watchStalls();
      const p = await perfdhcp(ours, 2000, 5);
      rows.push({
        what: `perfdhcp -r 2000 -R ${PERFDHCP_CLIENTS} for 5 s against one attachment of the cni-daemon while ${MANY - 1} idle: drops`,
        agent: `${p.dropPct.toFixed(2)} % (${p.rate.toFixed(0)}/s)`,
        baseline: '-',
        ratio: null,
        target: '0 % drops',
        met: p.dropPct === 0,
        note: `packets answered / sent: ${p.received}/${p.sent}; ${describeStalls(stalls.stop())}`,
      });
    }
    if (availableParallelism() >= 2) rows.push(...(await underFlood(env, ours, flooded)));
  } finally {
    await ours.cleanup().catch(() => undefined);
    await dnsmasq?.cleanup().catch(() => undefined);
  }
  return rows;
}

/** A guest on `pod` sending DHCPDISCOVERs as fast as it can, pinned to CPU 0, for `seconds`; resolves with how many. */
async function flood(relay: Netns, seconds: number): Promise<number> {
  const script = `
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, 25, b'eth0')
s.bind(('0.0.0.0', 68))
mac = bytes.fromhex('02f100d00001')
n, end = 0, time.time() + ${seconds}
while time.time() < end:
    for _ in range(100):
        h = struct.pack('!BBBBIHH4s4s4s4s16s64s128s', 1, 1, 6, 0, n, 0, 0x8000, bytes(4), bytes(4), bytes(4), bytes(4), mac + bytes(10), bytes(64), bytes(128))
        try:
            s.sendto(h + bytes([99, 130, 83, 99, 53, 1, 1, 255]), ('255.255.255.255', 67))
        except OSError:
            pass
        n += 1
print(n)
`;
  const r = await relay.exec(['taskset', '-c', '0', 'python3', '-c', script], { timeoutMs: (seconds + 60) * 1000 });
  return Number(r.stdout.trim());
}

/**
 * Isolation: DORA against one attachment while another attachment's guest floods DISCOVERs (the flooder pinned to
 * CPU 0; the daemon and the DORA client to CPU 1, so what is measured is the daemon's handling, not the flooder's
 * CPU), vs the same placement without the flood, interleaved by round.
 */
async function underFlood(env: BenchEnv, ours: DhcpSide, flooded: BenchPod): Promise<Row[]> {
  const flooder = await relayOn(flooded);
  try {
    await pinServer(ours, 1);
    const quiet: number[] = [];
    const noisy: number[] = [];
    let sent = 0;
    for (let round = 0; round < env.rounds; round++) {
      quiet.push(...(await dora(ours, DORAS_PER_ROUND, 1, CLIENT_WARM_UP_DORAS)).latenciesMs);
      const flooding = flood(flooder, 8);
      await sleep(1000); // the flood is on
      noisy.push(...(await dora(ours, DORAS_PER_ROUND, 1, CLIENT_WARM_UP_DORAS)).latenciesMs);
      sent += await flooding;
    }
    await pinServer(ours, null);
    return [
      {
        what: `DHCP DORA p50, one attachment of ${MANY}, while another attachment's guest floods DISCOVERs, vs without the flood (daemon and client on CPU 1, flooder on CPU 0)`,
        agent: ms(median(noisy)),
        baseline: ms(median(quiet)),
        ratio: median(noisy) / median(quiet),
        target: '≤ 1.2×',
        met: median(noisy) <= 1.2 * median(quiet),
        note: `p99 ${ms(quantile(noisy, 0.99))} under the flood, ${ms(quantile(quiet, 0.99))} without; the flooder sent ${(sent / (8 * env.rounds)).toFixed(0)} DISCOVERs/s`,
      },
      { what: `DHCP DORA p99, one attachment of ${MANY}, while another attachment's guest floods`, agent: ms(quantile(noisy, 0.99)), baseline: ms(quantile(quiet, 0.99)), ratio: quantile(noisy, 0.99) / quantile(quiet, 0.99), target: '≤ 1 ms', met: quantile(noisy, 0.99) <= 1 },
    ];
  } finally {
    await pinServer(ours, null).catch(() => undefined);
    await deleteNetns(flooder.name);
  }
}

/**
 * kill -9 of the daemon, then a new one: from its spawn until every attachment answered a DISCOVER (dhcp_prober.py in
 * a netns with one veth into each pod's k6t-eth0, a DISCOVER per interface every 20 ms until it gets its OFFER).
 */
async function restartToAnswering(env: BenchEnv, daemon: Daemon, pods: readonly BenchPod[], start: () => Promise<Daemon>): Promise<{ row: Row; daemon: Daemon }> {
  const prober: Netns = await makeNetns('bprober');
  try {
    const lines = pods.map((pod, i) => `link add pr${i} type veth peer name vpr${i} netns ${pod.pod.name}`);
    await runOk(['ip', '-n', prober.name, '-batch', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 120_000 });
    await runOk(['ip', '-n', prober.name, '-batch', '-'], { input: `${pods.map((_, i) => `link set pr${i} up`).join('\n')}\n` });
    for (const [i, pod] of pods.entries()) await runOk(['ip', '-n', pod.pod.name, 'link', 'set', `vpr${i}`, 'master', 'k6t-eth0', 'up']);
    const names = pods.map((_, i) => `pr${i}`);
    // Before the restart: every attachment answers (the probe works).
    const before = await prober.exec(['python3', join(process.cwd(), 'test/bench/dhcp_prober.py'), '30', ...names], { timeoutMs: 60_000 });
    const first = JSON.parse(before.stdout) as { missing: string[] };
    if (first.missing.length > 0) throw new Error(`before the restart ${first.missing.length} attachments did not answer`);

    await daemon.kill();
    const probe = prober.exec(['python3', join(process.cwd(), 'test/bench/dhcp_prober.py'), '60', ...names], { timeoutMs: 120_000 });
    await sleep(300); // the prober is sending before the daemon starts
    const spawned = Date.now();
    const next = await start();
    const result = JSON.parse((await probe).stdout) as { answered: Record<string, number>; missing: string[] };
    const times = Object.values(result.answered).map((t) => t * 1000 - spawned);
    const last = Math.max(...times);
    const adopted = /"served":(\d+),"dropped":(\d+),"failed":(\d+),"ms":([\d.]+),"msg":"attachments adopted"/.exec(next.output());
    env.log(`serving: restart → all answering in ${last.toFixed(0)} ms`);
    return {
      daemon: next,
      row: {
        what: `kill -9 of the cni-daemon serving ${MANY}, restart: from the new daemon's spawn to every attachment answering a DISCOVER`,
        agent: result.missing.length > 0 ? `${result.missing.length} never answered` : `${last.toFixed(0)} ms`,
        baseline: '-',
        ratio: null,
        target: '≤ 1 s',
        met: result.missing.length === 0 && last <= 1000,
        note: `first answer at ${Math.min(...times).toFixed(0)} ms, median ${median(times).toFixed(0)} ms (node start, configuration, then adoption before anything else: ${adopted ? `${adopted[1]} served in ${adopted[4]} ms` : 'no adoption line'})`,
      },
    };
  } finally {
    await deleteNetns(prober.name);
  }
}

export async function servingRows(env: BenchEnv): Promise<Row[]> {
  const memoryRow = `memory per served VM: cni-daemon serving ${MANY} vs 1 attachments, vs a serve process per VM`;
  const pods: BenchPod[] = [];
  let own: { pod: BenchPod; stateDir: string } | undefined;
  const daemons: Daemon[] = [];
  let serve: ChildProcess | undefined;
  const rows: Row[] = [];
  try {
    env.log(`serving: ${MANY + 1} bench pods…`);
    for (let i = 0; i < MANY; i++) pods.push(await makeBenchPod(env.workDir));
    own = await servePod(env);

    // The plumbing: a daemon that only plumbs (serveDhcp off) ADDs the 101 attachments, then stops. Its own PSS
    // growth over those ADDs is the plumbing's high-water mark (the note).
    const manyRoot = join(env.workDir, 'daemon-state');
    const plumber = await startDaemon(env, writeAgentConfig(env.workDir, { stateRoot: manyRoot, serveDhcp: false }), join(env.workDir, 'plumb.sock'));
    daemons.push(plumber);
    await cniAdd(plumber, pods[0]!, `serving-${process.pid}-0`);
    const plumbedOne = (await settled([plumber], plumber.child.pid ?? 0)).daemons[0]!;
    for (let i = 1; i < MANY; i++) await cniAdd(plumber, pods[i]!, `serving-${process.pid}-${i}`);
    const plumbedMany = (await settled([plumber], plumber.child.pid ?? 0)).daemons[0]!;
    await plumber.kill();
    daemons.splice(0);

    // One attachment's records alone in a second root (copied as they are: root's folder, root's files).
    const oneRoot = join(env.workDir, 'daemon-state-one');
    mkdirSync(oneRoot, { mode: 0o755 });
    const firstKey = readdirSync(manyRoot).find((name) => name.includes(`serving-${process.pid}-0.`));
    if (firstKey === undefined) throw new Error(`no attachment folder of serving-${process.pid}-0 in ${manyRoot}`);
    await runOk(['cp', '-a', join(manyRoot, firstKey), oneRoot]);

    // The per-VM process: serve for its own pod, as virt-launcher runs it.
    serve = spawn(process.execPath, [shippedProgram(env), 'serve', '--state-dir', own.stateDir, '--netns', own.pod.pod.path], { stdio: ['ignore', 'ignore', 'pipe'] });
    let serveErr = '';
    serve.stderr?.on('data', (chunk: Buffer) => (serveErr += chunk.toString()));
    await waitFor(async () => {
      if (serve!.exitCode !== null) throw new Error(`serve exited ${serve!.exitCode}: ${serveErr}`);
      return (await run(['ip', 'netns', 'exec', own!.pod.pod.name, 'ss', '-Huln', 'sport = :67'])).stdout.trim() !== '';
    }, { timeoutMs: 120_000, intervalMs: 250, what: 'serve listening' });

    // Two fresh serving daemons: one adopts 1 attachment, one adopts 101.
    const manyConfig = writeAgentConfig(env.workDir, { stateRoot: manyRoot });
    const manySocket = join(env.workDir, 'serving.sock');
    const startMany = (): Promise<Daemon> => startDaemon(env, manyConfig, manySocket);
    const one = await startDaemon(env, writeAgentConfig(env.workDir, { stateRoot: oneRoot }), join(env.workDir, 'serving-one.sock'));
    daemons.push(one);
    let many = await startMany();
    daemons.push(many);
    const adoptedLine = /"served":(\d+),"dropped":\d+,"failed":(\d+)/.exec(many.output());
    if (adoptedLine?.[1] !== String(MANY)) throw new Error(`the daemon adopted ${adoptedLine?.[1] ?? 'no'} attachments, not ${MANY}: ${many.output().slice(-400)}`);
    const measured = await settled([one, many], serve.pid ?? 0);
    const [withOne, withMany] = measured.daemons as [Sample, Sample];
    const perVm = (withMany.anon - withOne.anon) / (MANY - 1);
    const perVmTotal = (withMany.pss - withOne.pss) / (MANY - 1);
    const perVmHeap = (withMany.heap - withOne.heap) / (MANY - 1);
    const plumbing = (plumbedMany.anon - plumbedOne.anon) / (MANY - 1);
    const servePss = measured.serve.pss;
    rows.push({
      what: memoryRow,
      agent: `${kib(perVm)} per VM`,
      baseline: `${mib(servePss)} (serve)`,
      ratio: perVm / servePss,
      target: '≤ 128 KiB per VM',
      met: perVm <= 128,
      note:
        `per VM = (anonymous PSS of a daemon serving ${MANY} − of one serving 1) ÷ ${MANY - 1}: ${mib(withOne.anon)} and ${mib(withMany.anon)} (masquerade attachments, DHCPv4 each, adopted at start); ` +
        `total PSS ${mib(withOne.pss)} and ${mib(withMany.pss)} (${kib(perVmTotal)} per VM; its file-backed part is the node binary's pages, shared with every node process of the machine); ` +
        `V8 heap in use after a full GC ${mib(withOne.heap)} and ${mib(withMany.heap)} (${kib(perVmHeap)} per VM); one serve process ${mib(servePss)}, ${(servePss / perVm).toFixed(0)}× the per-VM cost. ` +
        `The daemon that ran the 100 ADDs (serving off) grew by ${kib(plumbing)} per ADD of anonymous PSS (${mib(plumbedOne.anon)} → ${mib(plumbedMany.anon)}): the plumbing's high-water mark, not serving's`,
    });
    serve.kill('SIGKILL');
    serve = undefined;
    await one.kill();
    daemons.splice(daemons.indexOf(one), 1);

    rows.push(...(await dhcpAtScale(env, many.child.pid ?? 0, pods[Math.floor(MANY / 2)]!, pods[1]!)));
    const restarted = await restartToAnswering(env, many, pods, startMany);
    daemons.splice(daemons.indexOf(many), 1, restarted.daemon);
    many = restarted.daemon;
    rows.push(restarted.row);
    return rows;
  } catch (error) {
    return [...rows, skipped(rows.length === 0 ? memoryRow : 'serving (rest of the group)', '-', `failed: ${error instanceof Error ? error.message : String(error)}`.slice(0, 400))];
  } finally {
    serve?.kill('SIGKILL');
    for (const daemon of daemons) await daemon.kill().catch(() => undefined);
    for (const pod of pods) await pod.cleanup().catch(() => undefined);
    await own?.pod.cleanup().catch(() => undefined);
  }
}
