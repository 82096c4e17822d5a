// Data-path benchmark with iperf3 and a fake guest (a veth on the in-pod bridge instead of the tap): raw veth vs bridge binding vs masquerade.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deleteNetns, makeNetns, run, runOk, waitFor, type Netns } from '../helpers/netns.js';
import { benchVmi, makeBenchPod, type BenchPod } from './pods.js';
import type { BenchEnv } from './rows-setup.js';
import { interleave, median, p90 } from './stats.js';
import type { Row } from './table.js';
import { skipped } from './table.js';

interface Topology {
  readonly name: string;
  /** Where the iperf3 client runs, and the address:port it connects to. */
  readonly client: Netns;
  readonly target: string;
  readonly server: ChildProcess;
  cleanup(): Promise<void>;
}

function startServer(ns: Netns): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns.name, 'iperf3', '-s', '-p', '5201'], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function waitListening(ns: Netns): Promise<void> {
  await waitFor(async () => (await ns.exec(['ss', '-ltn', 'sport = :5201'])).stdout.includes('5201'), { timeoutMs: 60_000, intervalMs: 200, what: `iperf3 listening in ${ns.name}` });
}

/** A fake guest netns whose eth0 is a veth enslaved to `bridge` in the pod. */
async function fakeGuest(pod: Netns, bridge: string, configure: (guest: Netns) => Promise<void>): Promise<Netns> {
  const guest = await makeNetns('bguest');
  await pod.execOk(['ip', 'link', 'add', 'vguest', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guest.name]);
  await pod.execOk(['ip', 'link', 'set', 'vguest', 'master', bridge, 'up']);
  await configure(guest);
  return guest;
}

async function agentSetup(env: BenchEnv, pod: BenchPod, masquerade: boolean): Promise<void> {
  const dir = mkdtempSync(join(env.workDir, 'dp-'));
  const vmi = benchVmi(`dp-${process.pid}-${masquerade ? 'm' : 'b'}`, masquerade ? { masquerade: true, ports: [5201] } : { masquerade: false });
  writeFileSync(join(dir, 'vmi.json'), JSON.stringify(vmi));
  await runOk([process.execPath, env.cli, 'setup', '--vmi', join(dir, 'vmi.json'), '--netns', pod.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null', '--hostname', 'benchvmi'], { timeoutMs: 120_000 });
}

async function rawVeth(): Promise<Topology> {
  const a = await makeNetns('braw-a');
  const b = await makeNetns('braw-b');
  await a.execOk(['ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b.name]);
  await a.execOk(['ip', 'addr', 'add', '10.99.0.1/24', 'dev', 'v0']);
  await a.execOk(['ip', 'link', 'set', 'v0', 'up']);
  await b.execOk(['ip', 'addr', 'add', '10.99.0.2/24', 'dev', 'eth0']);
  await b.execOk(['ip', 'link', 'set', 'eth0', 'up']);
  const server = startServer(b);
  await waitListening(b);
  return { name: 'raw', client: a, target: '10.99.0.2', server, cleanup: async () => { server.kill('SIGKILL'); await deleteNetns(a.name); await deleteNetns(b.name); } };
}

async function bridgeBinding(env: BenchEnv): Promise<Topology> {
  const pod = await makeBenchPod(env.workDir);
  await agentSetup(env, pod, false);
  const guest = await fakeGuest(pod.pod, 'k6t-eth0', async (g) => {
    await g.execOk(['ip', 'link', 'set', 'eth0', 'address', pod.podMac]);
    await g.execOk(['ip', 'addr', 'add', `${pod.podIp}/24`, 'dev', 'eth0']);
    await g.execOk(['ip', 'link', 'set', 'eth0', 'up']);
    await g.execOk(['ip', 'route', 'add', 'default', 'via', pod.nodeIp]);
  });
  const server = startServer(guest);
  await waitListening(guest);
  return { name: 'bridge', client: pod.node, target: pod.podIp, server, cleanup: async () => { server.kill('SIGKILL'); await deleteNetns(guest.name); await pod.cleanup(); } };
}

async function masquerade(env: BenchEnv): Promise<Topology> {
  const pod = await makeBenchPod(env.workDir);
  await agentSetup(env, pod, true);
  const guest = await fakeGuest(pod.pod, 'k6t-eth0', async (g) => {
    // The guest MAC the plan gives the domain (the pod NIC's): the pod's bridge already resolves 10.0.2.2 to it.
    await g.execOk(['ip', 'link', 'set', 'eth0', 'address', pod.podMac]);
    await g.execOk(['ip', 'addr', 'add', '10.0.2.2/24', 'dev', 'eth0']);
    await g.execOk(['ip', 'link', 'set', 'eth0', 'up']);
    await g.execOk(['ip', 'route', 'add', 'default', 'via', '10.0.2.1']);
  });
  const server = startServer(guest);
  await waitListening(guest);
  return { name: 'masquerade', client: pod.node, target: pod.podIp, server, cleanup: async () => { server.kill('SIGKILL'); await deleteNetns(guest.name); await pod.cleanup(); } };
}

async function iperf(t: Topology, seconds: number): Promise<number> {
  const r = await t.client.exec(['iperf3', '-c', t.target, '-p', '5201', '-t', String(seconds), '-J'], { timeoutMs: (seconds + 60) * 1000 });
  if (r.code !== 0) throw new Error(`iperf3 to ${t.name} failed: ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`);
  const doc = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
  const bps = doc.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error(`iperf3 to ${t.name}: no sum_received in the JSON`);
  return bps / 1e9;
}

const gbit = (s: readonly number[]): string => `${median(s).toFixed(2)} Gbit/s (p90 ${p90(s).toFixed(2)})`;

export async function datapathRows(env: BenchEnv, seconds: number): Promise<Row[]> {
  if ((await run(['iperf3', '--version'])).code !== 0) {
    return [skipped('data path: masquerade vs bridge', '≥ 0.9×', 'iperf3 is not installed'), skipped('data path: bridge vs raw veth', '≥ 0.85×', 'iperf3 is not installed')];
  }
  const topologies: Topology[] = [];
  try {
    topologies.push(await rawVeth());
    topologies.push(await bridgeBinding(env));
    topologies.push(await masquerade(env));
    const samples = await interleave(topologies.map((t) => ({ name: t.name, run: () => iperf(t, seconds) })), env.rounds);
    const raw = samples.get('raw') ?? [];
    const bridge = samples.get('bridge') ?? [];
    const masq = samples.get('masquerade') ?? [];
    // Throughput: higher is better, so the ratio is agent ÷ baseline and the target a floor.
    return [
      { what: `data path (iperf3 ${seconds}s): masquerade vs bridge binding`, agent: gbit(masq), baseline: gbit(bridge), ratio: median(masq) / median(bridge), target: '≥ 0.9×', met: median(masq) >= 0.9 * median(bridge) },
      { what: `data path (iperf3 ${seconds}s): bridge binding vs raw veth`, agent: gbit(bridge), baseline: gbit(raw), ratio: median(bridge) / median(raw), target: '≥ 0.85×', met: median(bridge) >= 0.85 * median(raw) },
    ];
  } finally {
    for (const t of topologies) await t.cleanup().catch(() => undefined);
  }
}
