// Bench rows: network downtime of a live migration (longest gap of a 10 ms ICMP probe from the node) into a pod the agent plumbed
// vs into a pod plumbed by the reference script (test/bench/migration-net-up.sh: shell + dnsmasq), in the same run.
//
// Four masquerade pods on one node, each with its own libvirtd: two plumbed by the agent (`setup`, then `serve`), two by
// the script. One guest hops agent → script → agent → script …, so every migration into an agent pod has a script pod
// as source and the other way round; both kinds are measured alternately under the same machine load.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { guestMissing, readConsole, waitForGuestLine } from '../helpers/guest.js';
import { libvirtdMissing } from '../helpers/libvirtd.js';
import { agentOk, migrate, PodSide, startProbe, virshOk, withStatus } from '../helpers/migration.js';
import { deleteNetns, makeNetns, run, type Netns } from '../helpers/netns.js';
import type { BenchEnv } from './rows-setup.js';
import { median, p90 } from './stats.js';
import { skipped, type Row } from './table.js';

const WHAT = 'live migration downtime: longest 10 ms probe gap, masquerade (into agent pod vs into net-up.sh pod)';
/** libvirt's default QEMU downtime limit (300 ms), and a tight one that leaves mostly the network's own share. */
const LIMITS: readonly (number | undefined)[] = [undefined, 30];
const TARGET = '≤ 1.0× and ≤ 100 ms';
/** hpet: TCG's TSC jumps when a guest moves between QEMUs; on TSC a guest hung (vCPU spinning) after ~10 migrations. */
const GUEST_CMDLINE = 'vna.tick=1 clocksource=hpet';
const NET_UP = join(process.cwd(), 'test/bench/migration-net-up.sh');
const VMI = `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: benchmig
  namespace: default
  uid: bench-migration
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
  networks:
  - name: default
    pod: {}
`;

interface Hop {
  readonly limit: number | undefined;
  readonly into: 'agent' | 'script';
  readonly gapMs: number;
  readonly qemuDowntimeMs: number | null;
}

export async function migrationRows(env: BenchEnv): Promise<Row[]> {
  const missing = guestMissing() ?? libvirtdMissing();
  if (missing !== null) return [skipped(WHAT, TARGET, missing)];
  const perKind = Math.min(env.rounds, 5);
  const domain = `vna-bench-mig-${process.pid}`;
  const sides = ['agent1', 'script1', 'agent2', 'script2'].map((label) => new PodSide(label, env.workDir));
  let node: Netns | undefined;
  const dnsmasqs: string[] = [];
  try {
    node = await makeNetns('benchmig');
    for (const [i, side] of sides.entries()) await side.plumb(node, { podCidr: '10.244.51.0/24', rangeStart: `10.244.51.${5 + i}`, rangeEnd: `10.244.51.${5 + i}` });
    const [agent1, script1, agent2, script2] = sides as [PodSide, PodSide, PodSide, PodSide];
    env.log('migration: starting 4 libvirtd…');
    await Promise.all(sides.map((s, i) => s.startLibvirtd(`6c6d667a-0000-4000-8000-0000000005${i}0`)));
    const vmi = agent1.file('vmi.yaml', `${VMI}status:\n  migrationTransport: Unix\n`);
    await agentOk(['setup', '--vmi', vmi, ...agent1.podArgs()]);
    await agent1.startServe();
    for (const s of [script1, script2]) {
      await run(['bash', NET_UP, s.pod.name, s.podIp, join(s.dir, 'dnsmasq')], { timeoutMs: 60_000 }).then((r) => {
        if (r.code !== 0) throw new Error(`migration-net-up.sh ${s.label}: ${r.stderr.trim()}`);
      });
      dnsmasqs.push(join(s.dir, 'dnsmasq', 'dnsmasq.pid'));
    }
    await agent1.defineAndStart(vmi, domain, GUEST_CMDLINE);
    const bootConsole = agent1.consoleFile;
    await waitForLease(bootConsole);
    const mac = agent1.podMac;
    const targetVmi = agent2.file('vmi.yaml', withStatus(VMI, { mac, migrationTransport: 'Unix', podIps: [agent1.podIp] }));
    await agentOk(['setup', '--vmi', targetVmi, '--phase', 'migration-target', ...agent2.podArgs()]);
    await agent2.startServe();

    const order = [script1, agent2, script2, agent1];
    const hops: Hop[] = [];
    /** Migrations after which the guest never answered again (a TCG guest hang, see BENCHMARKS.md), per limit. */
    const hung: { readonly limit: number | undefined; readonly into: string }[] = [];
    let at: PodSide = agent1;
    let i = 0;
    /** A fresh guest booted in agent1 (the domain stopped wherever it runs), so the next hop starts clean. */
    const freshGuest = async (): Promise<void> => {
      for (const side of sides) if (await side.domainActive(domain)) await virshOk(side.uri, ['destroy', domain]);
      rmSync(bootConsole, { force: true });
      agent1.consoleFile = bootConsole;
      await virshOk(agent1.uri, ['start', domain]);
      await waitForLease(bootConsole);
      at = agent1;
    };
    for (const limit of LIMITS) {
      // A fresh guest per row: one TCG guest migrated a dozen times in a row was seen to hang (vCPU spinning).
      if (hops.length > 0) await freshGuest();
      const count = (k: Hop['into']): number => hops.filter((h) => h.limit === limit && h.into === k).length;
      for (; count('agent') < perKind || count('script') < perKind; i++) {
        if (order[i % order.length] === at) i++; // after a fresh guest in agent1
        const to = order[i % order.length] as PodSide;
        // An agent pod about to receive the guest is set up as a migration target right before the hop, as virt-handler
        // does for each new target pod (the bench reuses its pods): its neighbour entry for the guest is fresh then.
        if (to.label.startsWith('agent')) await agentOk(['setup', '--vmi', targetVmi, '--phase', 'migration-target', ...to.podArgs()]);
        const probe = await startProbe(node, join(env.workDir, `mig-probe-${i}.log`), [at.podIp, to.podIp]);
        let mig: Awaited<ReturnType<typeof migrate>>;
        try {
          await waitReplies(probe, 20);
          mig = await migrate({ domain, from: at, to, node, transport: 'unix', ...(limit !== undefined ? { maxDowntimeMs: limit } : {}) });
          if (!mig.ok) throw new Error(`migration ${at.label} → ${to.label} failed: ${mig.output.slice(-300)}`);
          await waitReplies(probe, probe.replies() + 100);
        } catch (err) {
          await probe.stop();
          if (!(err instanceof GuestSilent) || hung.length >= MAX_HUNG) throw err;
          // Not a gap: the guest stopped (QEMU/TCG), in an agent pod or a script pod alike. Noted in the row, not timed.
          hung.push({ limit, into: to.label });
          const neighbours = (await to.pod.exec(['ip', 'neigh', 'show', 'dev', 'k6t-eth0'])).stdout.trim().replace(/\n/g, '; ');
          const consoleTail = readConsole(to.consoleFile).trim().split('\n').slice(-4).join(' | ');
          env.log(`migration (max downtime ${limit ?? 'default'}) ${at.label} → ${to.label}: ${err.message}; domain running there: ${await to.domainActive(domain)}; its neighbours: ${neighbours}; console tail: ${consoleTail}; a fresh guest boots in agent1`);
          await freshGuest();
          continue;
        }
        const result = await probe.stop();
        const into = to.label.startsWith('agent') ? 'agent' : 'script';
        hops.push({ limit, into, gapMs: result.longestGapMs, qemuDowntimeMs: mig.qemuDowntimeMs });
        env.log(`migration (max downtime ${limit ?? 'default'}) ${at.label} → ${to.label}: gap ${result.longestGapMs.toFixed(0)} ms, qemu downtime ${mig.qemuDowntimeMs ?? '?'} ms, virsh ${mig.wallMs} ms`);
        at = to;
      }
    }
    return LIMITS.map((limit) => row(hops.filter((h) => h.limit === limit), limit, hung.filter((h) => h.limit === limit).map((h) => h.into)));
  } finally {
    for (const pidFile of dnsmasqs) await run(['sh', '-c', `[ -f ${pidFile} ] && kill $(cat ${pidFile}) || true`]);
    for (const side of sides) await side.cleanup(domain);
    if (node) await deleteNetns(node.name).catch(() => undefined);
  }
}

function row(hops: readonly Hop[], limit: number | undefined, hungInto: readonly string[]): Row {
  const gaps = (k: Hop['into']): number[] => hops.filter((h) => h.into === k).map((h) => h.gapMs);
  const qemu = (k: Hop['into']): number[] => hops.filter((h) => h.into === k && h.qemuDowntimeMs !== null).map((h) => h.qemuDowntimeMs ?? 0);
  /** What the network adds to QEMU's pause: probe gap minus QEMU's own downtime, per migration. */
  const network = (k: Hop['into']): number[] => hops.filter((h) => h.into === k && h.qemuDowntimeMs !== null).map((h) => h.gapMs - (h.qemuDowntimeMs ?? 0));
  const ours = gaps('agent');
  const theirs = gaps('script');
  const ratio = median(ours) / median(theirs);
  return {
    what: `${WHAT}, ${limit === undefined ? "libvirt's default max downtime" : `max downtime ${limit} ms`}`,
    agent: `${median(ours).toFixed(0)} ms (p90 ${p90(ours).toFixed(0)})`,
    baseline: `${median(theirs).toFixed(0)} ms (p90 ${p90(theirs).toFixed(0)})`,
    ratio,
    target: TARGET,
    met: ratio <= 1.0 && median(ours) <= 100,
    note:
      `${ours.length}+${theirs.length} migrations alternating agent/script targets (virsh migrate --live --p2p, unix sockets proxied over the node); ` +
      `gaps agent [${ours.map((g) => g.toFixed(0)).join(', ')}], script [${theirs.map((g) => g.toFixed(0)).join(', ')}] ms; ` +
      `QEMU's own downtime median agent ${median(qemu('agent')).toFixed(0)} ms, script ${median(qemu('script')).toFixed(0)} ms; ` +
      `gap minus QEMU downtime median agent ${median(network('agent')).toFixed(0)} ms, script ${median(network('script')).toFixed(0)} ms` +
      (hungInto.length > 0 ? `; ${hungInto.length} migration(s) (into ${hungInto.join(', ')}) left the TCG guest silent and were redone with a fresh guest` : ''),
  };
}

/** The probe got no replies for a minute: the guest (or its QEMU) stopped, not a slow network. */
class GuestSilent extends Error {}

/** Hops redone with a fresh guest before the row gives up. */
const MAX_HUNG = 5;

async function waitReplies(probe: { replies(): number }, n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (probe.replies() < n) {
    if (Date.now() > deadline) throw new GuestSilent(`probe: only ${probe.replies()} of ${n} replies in 60 s (the guest stopped answering)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForLease(consoleFile: string): Promise<void> {
  await waitForGuestLine(consoleFile, (l) => l.kind === 'LEASE' && l.fields['if'] === 'eth0', 'the bench guest lease', 600_000);
}
