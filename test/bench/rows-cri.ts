// CRI benchmarks: pod sandboxes through containerd 1.6's CRI with virt-net-agent chained vs the same conflist without it, side by side.
//
// Two private containerd instances (test/helpers/containerd.ts), each in its own node netns: "plain" runs
// bridge + host-local + portmap, "ours" the same with virt-net-agent (masquerade, through the shim and a cni-daemon)
// after bridge. Rounds alternate between them (rotating who goes first). Timed from the CRI client: RunPodSandbox of
// a kubelet-made pod (two container ports, one with a hostPort, labels, annotations), StopPodSandbox +
// RemovePodSandbox of it, and 20 RunPodSandbox calls sent at once (the wall time until all 20 are ready).
import { agentPlugin, bridgeChain, containerdUnavailable, portmapPlugin, startContainerd, type Containerd } from '../helpers/containerd.js';
import type { PodSandboxConfig } from '../helpers/cri-client.js';
import { interleave, median, msSince, p90 } from './stats.js';
import { fmtMs, skipped, type Row } from './table.js';
import type { BenchEnv } from './rows-setup.js';

const RUN = 'RunPodSandbox through containerd (CRI): bridge+host-local+virt-net-agent+portmap vs without virt-net-agent';
const STOP = 'StopPodSandbox + RemovePodSandbox: same conflists';
const BURST = '20 RunPodSandbox at once (wall time until all are ready): same conflists';
const PARALLEL = 20;

function pod(c: Containerd, name: string, hostPort: boolean): PodSandboxConfig {
  return c.podConfig(name, {
    ports: [{ protocol: 'TCP', container_port: 80, ...(hostPort ? { host_port: 18080 } : {}) }, { protocol: 'TCP', container_port: 9090 }],
    labels: { app: 'bench' },
    annotations: { 'virt-net-agent.kubevirt.io/spoof-protection': 'true' },
  });
}

export async function criRows(env: BenchEnv): Promise<Row[]> {
  const why = containerdUnavailable();
  if (why !== null) return [skipped(RUN, '≤ 1.2×', why), skipped(STOP, '≤ 1.5×', why), skipped(BURST, '≤ 1.2×', why)];
  const started: Containerd[] = [];
  try {
    const plain = await startContainerd({ tag: 'bplain', daemon: false, plugins: (c) => [...bridgeChain(c), portmapPlugin()] });
    started.push(plain);
    const ours = await startContainerd({ tag: 'bours', plugins: (c) => [...bridgeChain(c), agentPlugin(c, 'masquerade'), portmapPlugin()] });
    started.push(ours);
    const sides = [
      { name: 'ours', c: ours },
      { name: 'plain', c: plain },
    ];
    // One untimed pod each: the first sandbox of an instance pays for snapshots and caches.
    for (const { c } of sides) {
      const id = await c.cri.runPodSandbox(pod(c, 'warmup', true));
      await c.cri.stopPodSandbox(id);
      await c.cri.removePodSandbox(id);
    }

    // Serial: Run, then Stop + Remove, of one pod per round and side.
    const rounds = Math.max(20, env.rounds * 3);
    const stopMs = new Map<string, number[]>(sides.map((s) => [s.name, []]));
    const run = await interleave(
      sides.map(({ name, c }) => ({
        name,
        async run(round: number): Promise<number> {
          const cfg = pod(c, `bench-${round}`, true);
          const t0 = process.hrtime.bigint();
          const id = await c.cri.runPodSandbox(cfg);
          const ms = msSince(t0);
          const t1 = process.hrtime.bigint();
          await c.cri.stopPodSandbox(id);
          await c.cri.removePodSandbox(id);
          stopMs.get(name)?.push(msSince(t1));
          return ms;
        },
      })),
      rounds,
    );
    const ra = run.get('ours') ?? [];
    const rb = run.get('plain') ?? [];
    const sa = stopMs.get('ours') ?? [];
    const sb = stopMs.get('plain') ?? [];
    env.log(`cri: ${rounds} serial rounds done`);

    // Burst: 20 pods at once, then all stopped and removed (untimed).
    const burst = await interleave(
      sides.map(({ name, c }) => ({
        name,
        async run(round: number): Promise<number> {
          const cfgs = Array.from({ length: PARALLEL }, (_, i) => pod(c, `burst-${round}-${i}`, false));
          const t0 = process.hrtime.bigint();
          const ids = await Promise.all(cfgs.map((cfg) => c.cri.runPodSandbox(cfg)));
          const ms = msSince(t0);
          await Promise.all(ids.map((id) => c.cri.stopPodSandbox(id)));
          await Promise.all(ids.map((id) => c.cri.removePodSandbox(id)));
          return ms;
        },
      })),
      Math.max(3, Math.ceil(env.rounds / 2)),
    );
    const ba = burst.get('ours') ?? [];
    const bb = burst.get('plain') ?? [];
    return [
      { what: RUN, agent: fmtMs(median(ra), p90(ra)), baseline: fmtMs(median(rb), p90(rb)), ratio: median(ra) / median(rb), target: '≤ 1.2×', met: median(ra) <= 1.2 * median(rb) },
      { what: STOP, agent: fmtMs(median(sa), p90(sa)), baseline: fmtMs(median(sb), p90(sb)), ratio: median(sa) / median(sb), target: '≤ 1.5×', met: median(sa) <= 1.5 * median(sb) },
      { what: BURST, agent: fmtMs(median(ba), p90(ba)), baseline: fmtMs(median(bb), p90(bb)), ratio: median(ba) / median(bb), target: '≤ 1.2×', met: median(ba) <= 1.2 * median(bb) },
    ];
  } finally {
    for (const c of started) await c.cleanup().catch((e: unknown) => env.log(`cri clean-up: ${e instanceof Error ? e.message : String(e)}`));
  }
}
