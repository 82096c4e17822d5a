// DHCP benchmarks: DORA latency of `serve` vs dnsmasq (same topology, relay mode, same run), perfdhcp at 2000/s, and serve's RSS.
//
// Topology per server: a masquerade pod set up by the agent (bridge k6t-eth0 10.0.2.1/24), plus a "relay" netns whose eth0
// is a veth on that bridge with 10.0.2.50/24. The DORA client and perfdhcp run in the relay netns as relay agents
// (giaddr 10.0.2.50), so both servers answer by unicast to 10.0.2.50:67. DORA latency is measured per CPU placement
// of server and client (see Placement), in rounds of 1000 DORAs after an unmeasured warm-up.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { deleteNetns, makeNetns, run, runOk, waitFor, type Netns } from '../helpers/netns.js';
import { benchVmi, makeBenchPod, type BenchPod } from './pods.js';
import { shippedProgram, type BenchEnv } from './rows-setup.js';
import { describeStalls, watchStalls } from './stalls.js';
import { interleave, median, quantile } from './stats.js';
import { skipped, type Row } from './table.js';

const RELAY_IP = '10.0.2.50';
const SERVER_IP = '10.0.2.1';

export interface DhcpSide {
  readonly name: string;
  readonly pod: BenchPod;
  readonly relay: Netns;
  /** The serving process (its pid is pinned to CPUs). */
  readonly server: { readonly pid?: number | undefined };
  cleanup(): Promise<void>;
}

async function plumbedPod(env: BenchEnv, secondaries: number): Promise<{ pod: BenchPod; stateDir: string }> {
  const pod = await makeBenchPod(env.workDir, secondaries);
  try {
    const dir = mkdtempSync(join(env.workDir, 'dhcp-'));
    const statusPath = join(dir, 'network-status');
    writeFileSync(statusPath, pod.networkStatus);
    writeFileSync(join(dir, 'vmi.json'), JSON.stringify(benchVmi(`dhcp-${process.pid}-${dir.slice(-6)}`, { masquerade: true, ports: [80], secondaries: pod.secondaries })));
    const stateDir = join(dir, 'state');
    await runOk([process.execPath, shippedProgram(env), 'setup', '--vmi', join(dir, 'vmi.json'), '--netns', pod.pod.path, '--state-dir', stateDir, '--resolv-conf', '/dev/null', '--hostname', 'benchvmi', '--network-status', statusPath], { timeoutMs: 180_000 });
    return { pod, stateDir };
  } catch (err) {
    await pod.cleanup();
    throw err;
  }
}

export async function relayOn(pod: BenchPod): Promise<Netns> {
  const relay = await makeNetns('brelay');
  await pod.pod.execOk(['ip', 'link', 'add', 'vrelay', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', relay.name]);
  await pod.pod.execOk(['ip', 'link', 'set', 'vrelay', 'master', 'k6t-eth0', 'up']);
  await relay.execOk(['ip', 'addr', 'add', `${RELAY_IP}/24`, 'dev', 'eth0']);
  await relay.execOk(['ip', 'link', 'set', 'eth0', 'up']);
  return relay;
}

async function udp67Sockets(ns: Netns): Promise<number> {
  const r = await ns.exec(['ss', '-Huln', 'sport = :67']);
  return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

function startServe(env: BenchEnv, pod: BenchPod, stateDir: string): ChildProcess {
  return track(spawn(process.execPath, [shippedProgram(env), 'serve', '--state-dir', stateDir, '--netns', pod.pod.path], { stdio: ['ignore', 'ignore', 'pipe'] }));
}

async function serveSide(env: BenchEnv, secondaries = 0): Promise<DhcpSide & { stateDir: string }> {
  const { pod, stateDir } = await plumbedPod(env, secondaries);
  const relay = await relayOn(pod);
  const server = startServe(env, pod, stateDir);
  let stderr = '';
  server.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const cleanup = async (): Promise<void> => {
    server.kill('SIGTERM');
    await deleteNetns(relay.name);
    await pod.cleanup();
  };
  try {
    await waitFor(async () => {
      if (server.exitCode !== null) throw new Error(`serve exited ${server.exitCode}: ${stderr.trim()}`);
      return (await udp67Sockets(pod.pod)) >= secondaries + 1;
    }, { timeoutMs: 120_000, intervalMs: 250, what: 'serve listening on :67' });
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { name: 'serve', pod, relay, server, stateDir, cleanup };
}

export async function dnsmasqSide(env: BenchEnv): Promise<DhcpSide> {
  const { pod } = await plumbedPod(env, 0);
  const relay = await relayOn(pod);
  // A pool of 253 addresses, so every perfdhcp client (-R 200) can get one; the DORA client's one MAC always gets .2.
  // dnsmasq logs every exchange on stderr: a pipe nobody reads fills after ~64 KiB and blocks it (it then stops
  // answering, as an earlier version of this bench found). Its log goes nowhere, like serve's stdout here.
  const server = track(spawn('ip', ['netns', 'exec', pod.pod.name, 'dnsmasq', '--no-daemon', '--no-ping', '--leasefile-ro', '--port=0', '--interface=k6t-eth0', '--bind-interfaces',
    '--dhcp-range=10.0.2.2,10.0.2.254,255.255.255.0,999d', '--dhcp-option=option:router,10.0.2.1', '--dhcp-option=option:dns-server,10.96.0.10', '--dhcp-option=option:mtu,1500'], { stdio: 'ignore' }));
  const cleanup = async (): Promise<void> => {
    server.kill('SIGKILL');
    await deleteNetns(relay.name);
    await pod.cleanup();
  };
  try {
    await waitFor(async () => (await udp67Sockets(pod.pod)) >= 1, { timeoutMs: 60_000, intervalMs: 250, what: 'dnsmasq listening on :67' });
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { name: 'dnsmasq', pod, relay, server, cleanup };
}

/** Runs `count` DORAs from the relay netns; `clientCpu` pins the client process to one CPU (null: the scheduler's choice). */
export async function dora(side: DhcpSide, count: number, clientCpu: number | null = null, clientWarmUp = 0): Promise<{ latenciesMs: number[]; lost: number }> {
  const client = join(process.cwd(), 'test/bench/dora_client.py');
  const pin = clientCpu === null ? [] : ['taskset', '-c', String(clientCpu)];
  const r = await side.relay.exec([...pin, 'python3', client, SERVER_IP, RELAY_IP, String(count), CLIENT_MAC, String(clientWarmUp)], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`dora client against ${side.name} failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as { latenciesMs: number[]; lost: number };
}

/**
 * Where the DORA client runs relative to the server. On 2 vCPUs the scheduler puts the two ping-ponging processes on
 * the same CPU or on different ones by chance, and the two give different latencies (same CPU: the client runs only
 * when the server blocks, so every microsecond the server spends after its reply — its log line — is on the path;
 * different CPUs: each wake-up crosses CPUs). Unpinned rounds therefore mix two distributions in proportions that
 * differ between the servers by chance; the pinned placements measure each case for both servers alike.
 */
export interface Placement {
  readonly name: string;
  readonly serverCpu: number | null;
  readonly clientCpu: number | null;
  /** Whether the ≤ 1.2× target is judged on this placement. */
  readonly judged: boolean;
}

export function placements(): Placement[] {
  const unpinned: Placement = { name: 'unpinned (scheduler\'s choice)', serverCpu: null, clientCpu: null, judged: false };
  if (availableParallelism() < 2) return [unpinned];
  return [
    { name: 'server and client on different CPUs', serverCpu: 1, clientCpu: 0, judged: true },
    { name: 'server and client on the same CPU', serverCpu: 1, clientCpu: 1, judged: true },
    unpinned,
  ];
}

/** Moves every thread of a running server to `cpu`, or lets it run anywhere again (null). */
export async function pinServer(side: DhcpSide, cpu: number | null): Promise<void> {
  const cpus = cpu === null ? `0-${availableParallelism() - 1}` : String(cpu);
  await runOk(['taskset', '-a', '-p', '-c', cpus, String(side.server.pid ?? 0)]);
}

/**
 * DORAs per measured round (one client process each), per side before the first round (not measured: the server's
 * warm-up), and at the start of every client process (not measured: the client's own start-up).
 */
export const DORAS_PER_ROUND = 1000;
export const WARM_UP_DORAS = 300;
export const CLIENT_WARM_UP_DORAS = 50;
/** The DORA client's MAC. */
const CLIENT_MAC = '02:be:0c:00:00:01';

/** VmRSS and its parts (kB): anonymous (heap, stacks) and file-backed (the node binary's pages, evictable and shared). */
function rss(pid: number): { totalKb: number; anonKb: number; fileKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 'NaN');
  return { totalKb: field('VmRSS'), anonKb: field('RssAnon'), fileKb: field('RssFile') };
}

const mib = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;
const parts = (r: { anonKb: number; fileKb: number }): string => `anon ${mib(r.anonKb)} + file ${mib(r.fileKb)}`;

export interface PerfResult {
  readonly rate: number;
  readonly dropPct: number;
  readonly sent: number;
  readonly received: number;
  readonly text: string;
}

/** perfdhcp's simulated clients: within dnsmasq's pool, so both servers can answer every one. */
export const PERFDHCP_CLIENTS = 200;

export async function perfdhcp(side: DhcpSide, rate: number, seconds: number): Promise<PerfResult> {
  // -W: after the run, wait 1 s for the replies still in flight (perfdhcp's default, 0, counts the last exchanges
  // of every run as drops: 1 of 10,000 for both servers in an otherwise clean run).
  const args = ['perfdhcp', '-4', '-l', 'eth0', '-r', String(rate), '-R', String(PERFDHCP_CLIENTS), '-p', String(seconds), '-W', '1000000'];
  const r = await side.relay.exec(args, { timeoutMs: (seconds + 120) * 1000 });
  const text = r.stdout;
  const sent = [...text.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
  const received = [...text.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
  const totalSent = sent.reduce((a, b) => a + b, 0);
  const totalReceived = received.reduce((a, b) => a + b, 0);
  if (totalSent === 0) throw new Error(`perfdhcp against ${side.name} printed no statistics (exit ${r.code}): ${(r.stderr || text).trim().slice(0, 300)}`);
  // Exchanges started per second of the run: perfdhcp's own "Rate" divides by the run including the -W wait.
  return { rate: (sent[0] ?? 0) / seconds, dropPct: (100 * (totalSent - totalReceived)) / totalSent, sent: totalSent, received: totalReceived, text };
}

const ms = (v: number): string => `${v.toFixed(3)} ms`;

/** Children to kill if the bench is interrupted (a serve or dnsmasq must not outlive its namespaces). */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

export async function dhcpRows(env: BenchEnv, exchanges = 10_000): Promise<Row[]> {
  const serveSource = join(process.cwd(), 'dist/agent/cli/cmd-serve.js');
  const rowNames = ['DHCP DORA p50 vs dnsmasq', 'DHCP DORA p99', 'perfdhcp 2000/s', 'serve RSS idle (4 interfaces)', 'serve RSS after 10k exchanges'];
  if (!existsSync(serveSource)) return rowNames.map((n) => skipped(n, '-', '`serve` is not built (dist/agent/cli/cmd-serve.js missing)'));
  if ((await run(['dnsmasq', '--version'])).code !== 0) return rowNames.map((n) => skipped(n, '-', 'dnsmasq is not installed'));
  const rows: Row[] = [];

  // DORA latency: per placement, interleaved rounds of DORAS_PER_ROUND, after an unmeasured warm-up per side.
  const sides: DhcpSide[] = [];
  try {
    sides.push(await serveSide(env));
    sides.push(await dnsmasqSide(env));
    for (const side of sides) await dora(side, WARM_UP_DORAS);
    const everyServe: number[] = [];
    const everyDnsmasq: number[] = [];
    for (const placement of placements()) {
      for (const side of sides) await pinServer(side, placement.serverCpu);
      const lost = new Map<string, number>();
      const all = new Map<string, number[]>();
      const doraStalls = watchStalls();
      await interleave(
        sides.map((side) => ({
          name: side.name,
          run: async () => {
            const r = await dora(side, DORAS_PER_ROUND, placement.clientCpu, CLIENT_WARM_UP_DORAS);
            const samples = all.get(side.name) ?? [];
            samples.push(...r.latenciesMs);
            all.set(side.name, samples);
            lost.set(side.name, (lost.get(side.name) ?? 0) + r.lost);
            return median(r.latenciesMs);
          },
        })),
        env.rounds,
      );
      const s = all.get('serve') ?? [];
      const d = all.get('dnsmasq') ?? [];
      everyServe.push(...s);
      everyDnsmasq.push(...d);
      const note = `p10 serve ${ms(quantile(s, 0.1))}, dnsmasq ${ms(quantile(d, 0.1))}; p99 serve ${ms(quantile(s, 0.99))}, dnsmasq ${ms(quantile(d, 0.99))}; lost: serve ${lost.get('serve') ?? 0}, dnsmasq ${lost.get('dnsmasq') ?? 0} of ${DORAS_PER_ROUND * env.rounds} each; ${describeStalls(doraStalls.stop())}`;
      rows.push({
        what: `DHCP DORA latency p50 (relay mode), ${placement.name}, vs dnsmasq`,
        agent: ms(median(s)),
        baseline: ms(median(d)),
        ratio: median(s) / median(d),
        target: placement.judged ? '≤ 1.2×' : '-',
        met: placement.judged ? median(s) <= 1.2 * median(d) : null,
        note,
      });
    }
    for (const side of sides) await pinServer(side, null);
    rows.push({ what: 'DHCP DORA latency p99 (every placement), vs dnsmasq (target absolute)', agent: ms(quantile(everyServe, 0.99)), baseline: ms(quantile(everyDnsmasq, 0.99)), ratio: quantile(everyServe, 0.99) / quantile(everyDnsmasq, 0.99), target: 'agent ≤ 1 ms', met: quantile(everyServe, 0.99) <= 1 });

    if ((await run(['perfdhcp', '-h'])).code === -1) {
      rows.push(skipped('perfdhcp 2000/s', '0 % drops', 'perfdhcp (kea-admin) is not installed'));
    } else {
      const serve = sides[0];
      const dnsmasq = sides[1];
      if (serve && dnsmasq) {
        const perfStalls = watchStalls();
        const ps = await perfdhcp(serve, 2000, 5);
        const pd = await perfdhcp(dnsmasq, 2000, 5);
        rows.push({
          what: `perfdhcp -r 2000 -R ${PERFDHCP_CLIENTS} for 5 s: drops (and achieved rate)`,
          agent: `${ps.dropPct.toFixed(2)} % (${ps.rate.toFixed(0)}/s)`,
          baseline: `${pd.dropPct.toFixed(2)} % (${pd.rate.toFixed(0)}/s) dnsmasq`,
          ratio: null,
          target: '0 % drops',
          met: ps.dropPct === 0,
          note: `packets answered / sent: serve ${ps.received}/${ps.sent}, dnsmasq ${pd.received}/${pd.sent}; ${describeStalls(perfStalls.stop())}`,
        });
      }
    }
  } finally {
    for (const side of sides) await side.cleanup().catch(() => undefined);
  }

  // RSS: serve with 4 DHCP interfaces (masquerade + 3 bridge secondaries), idle and after 10k exchanges, vs a bare node.
  let side: (DhcpSide & { stateDir: string }) | undefined;
  const bare = track(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' }));
  try {
    side = await serveSide(env, 3);
    const pid = side.server.pid ?? 0;
    await new Promise((r) => setTimeout(r, 2000)); // let both settle after start-up (not a correctness wait)
    const bareIdle = rss(bare.pid ?? 0);
    const idle = rss(pid);
    rows.push({
      what: 'serve RSS idle, 4 DHCP interfaces, vs bare node',
      agent: mib(idle.totalKb),
      baseline: mib(bareIdle.totalKb),
      ratio: idle.totalKb / bareIdle.totalKb,
      target: '≤ 1.5×',
      met: idle.totalKb <= 1.5 * bareIdle.totalKb,
      note: `serve ${parts(idle)}; bare node ${parts(bareIdle)}`,
    });
    const r = await dora(side, Math.ceil(exchanges / 2)); // one DORA = 2 request/reply exchanges
    const after = rss(pid);
    const bareAfter = rss(bare.pid ?? 0);
    rows.push({
      what: `serve RSS after ${exchanges} exchanges, vs bare node`,
      agent: mib(after.totalKb),
      baseline: mib(bareAfter.totalKb),
      ratio: after.totalKb / bareAfter.totalKb,
      target: '≤ 1.5×',
      met: after.totalKb <= 1.5 * bareAfter.totalKb,
      note: `${r.latenciesMs.length} DORAs answered, ${r.lost} lost; serve ${parts(after)}; bare node ${parts(bareAfter)}`,
    });
  } finally {
    bare.kill('SIGKILL');
    await side?.cleanup().catch(() => undefined);
  }
  return rows;
}
