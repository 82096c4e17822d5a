// Bench row: live migration across OVN chassis (test/helpers/ovn.ts), masquerade: the network's share of the downtime
// (longest gap of a 10 ms probe from a pod on a third chassis, minus QEMU's own downtime) into pods the agent plumbed vs
// into pods plumbed by the reference script (test/bench/migration-net-up.sh, /work/shared/reference/migration/net-up.sh
// adapted to OVN pods: MTU 1400 on bridge, tap and in the DHCP answer), and QEMU's first RARP to the first reply (at the
// observer, and the guest's own reply as the target pod's bridge receives it: how much of the time is the resumed guest).
//
// Four OVN-K pods with their own logical ports (OVN-K's ordinary pods: each its own IP), agent pods on node1 and script
// pods on node2, so every hop crosses chassis (geneve, userspace datapath): agent1 → script1 → agent2 → script2 → …
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { guestMissing, readConsole, waitForGuestLine } from '../helpers/guest.js';
import { libvirtdMissing } from '../helpers/libvirtd.js';
import { agentOk, migrate, startProbe, virshOk, withStatus, type PodSide } from '../helpers/migration.js';
import { run } from '../helpers/netns.js';
import { OvnNetwork, ovnMac, ovnMissing } from '../helpers/ovn.js';
import { firstReplyAfter, ovnPodSide, watchRarp } from '../helpers/ovn-migration.js';
import type { BenchEnv } from './rows-setup.js';
import { median, p90 } from './stats.js';
import { skipped, type Row } from './table.js';

const WHAT = 'live migration across OVN chassis, masquerade: longest 10 ms probe gap minus QEMU downtime (into agent pod vs into net-up.sh pod)';
const TARGET = '≤ 1.0× and ≤ 20 ms median';
const GUEST_CMDLINE = 'vna.tick=1 clocksource=hpet';
const NET_UP = join(process.cwd(), 'test/bench/migration-net-up.sh');
const VMI = `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: benchovnmig
  namespace: default
  uid: bench-ovn-migration
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
  readonly into: 'agent' | 'script';
  readonly gapMs: number;
  readonly qemuDowntimeMs: number | null;
  readonly rarpToReplyMs: number | null;
  /** QEMU's first RARP → the guest's first echo reply received on the target pod's bridge (before any network hop). */
  readonly rarpToGuestMs: number | null;
}

class GuestSilent extends Error {}

async function waitReplies(probe: { replies(): number }, n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (probe.replies() < n) {
    if (Date.now() > deadline) throw new GuestSilent(`probe: only ${probe.replies()} of ${n} replies in 60 s (the guest stopped answering)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function ovnMigrationRows(env: BenchEnv): Promise<Row[]> {
  const missing = ovnMissing() ?? guestMissing() ?? libvirtdMissing();
  if (missing !== null) return [skipped(WHAT, TARGET, missing)];
  const perKind = Math.min(env.rounds, 5);
  const domain = `vna-bench-ovnmig-${process.pid}`;
  let ovn: OvnNetwork | undefined;
  const sides: PodSide[] = [];
  const dnsmasqs: string[] = [];
  try {
    ovn = await OvnNetwork.start({ chassis: 3 });
    const [node1, node2, node3] = ovn.chassis;
    const observer = await ovn.addPod({ chassis: node3!, ip: '10.128.0.30' });
    const plan = [['agent1', node1!, '10.128.0.21'], ['script1', node2!, '10.128.0.22'], ['agent2', node1!, '10.128.0.23'], ['script2', node2!, '10.128.0.24']] as const;
    // A folder of its own: the migration group's pods (same labels) leave their state folders in env.workDir.
    const workDir = join(env.workDir, 'ovn-migration');
    mkdirSync(workDir, { recursive: true });
    for (const [label, chassis, ip] of plan) {
      const { side } = await ovnPodSide(ovn, label, workDir, chassis, { lsp: `bench-${label}-${process.pid}`, ip, mac: ovnMac(ip) }, false);
      sides.push(side);
    }
    const [agent1, script1, agent2, script2] = sides as [PodSide, PodSide, PodSide, PodSide];
    env.log('ovn-migration: starting 4 libvirtd…');
    await Promise.all(sides.map((s, i) => s.startLibvirtd(`6c6d667a-0000-4000-8000-0000000007${i}0`)));
    const vmi = agent1.file('vmi.yaml', `${VMI}status:\n  migrationTransport: Unix\n`);
    await agentOk(['setup', '--vmi', vmi, ...agent1.podArgs()]);
    await agent1.startServe();
    for (const s of [script1, script2]) {
      const r = await run(['bash', NET_UP, s.pod.name, s.podIp, join(s.dir, 'dnsmasq'), '1400'], { timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`migration-net-up.sh ${s.label}: ${r.stderr.trim()}`);
      dnsmasqs.push(join(s.dir, 'dnsmasq', 'dnsmasq.pid'));
    }
    await agent1.defineAndStart(vmi, domain, GUEST_CMDLINE);
    const bootConsole = agent1.consoleFile;
    const lease = async (): Promise<void> => {
      await waitForGuestLine(bootConsole, (l) => l.kind === 'LEASE' && l.fields['if'] === 'eth0', 'the bench guest lease', 600_000);
    };
    await lease();
    // An agent pod about to receive the guest is set up as a migration target right before the hop, as virt-handler
    // does for each new target pod (the bench reuses its pods; the guest MAC comes from the status).
    const targetVmi = (side: PodSide): string => side.file('vmi-target.yaml', withStatus(VMI, { mac: agent1.podMac, migrationTransport: 'Unix', podIps: [agent1.podIp] }));
    await agentOk(['setup', '--vmi', targetVmi(agent2), '--phase', 'migration-target', ...agent2.podArgs()]);
    await agent2.startServe();

    const order = [script1, agent2, script2, agent1];
    const hops: Hop[] = [];
    const hung: string[] = [];
    let at: PodSide = agent1;
    for (let i = 0; hops.filter((h) => h.into === 'agent').length < perKind || hops.filter((h) => h.into === 'script').length < perKind; i++) {
      if (order[i % order.length] === at) i++;
      const to = order[i % order.length] as PodSide;
      if (to.label.startsWith('agent')) await agentOk(['setup', '--vmi', targetVmi(to), '--phase', 'migration-target', ...to.podArgs()]);
      const probeLog = join(env.workDir, `ovnmig-probe-${i}.log`);
      const probe = await startProbe(observer.ns, probeLog, [at.podIp, to.podIp]);
      const rarps = await watchRarp(to.pod, 'k6t-eth0', join(env.workDir, `ovnmig-rarp-${i}.log`));
      let mig: Awaited<ReturnType<typeof migrate>>;
      try {
        await waitReplies(probe, 20);
        mig = await migrate({ domain, from: at, to, node: node1!.ns, transport: 'unix' });
        if (!mig.ok) throw new Error(`migration ${at.label} → ${to.label} failed: ${mig.output.slice(-300)}`);
        await waitReplies(probe, probe.replies() + 100);
      } catch (err) {
        await probe.stop();
        await rarps.stop();
        if (!(err instanceof GuestSilent) || hung.length >= 5) throw err;
        hung.push(to.label);
        env.log(`ovn-migration ${at.label} → ${to.label}: ${err.message}; console tail: ${readConsole(to.consoleFile).trim().split('\n').slice(-3).join(' | ')}; a fresh guest boots in agent1`);
        for (const side of sides) if (await side.domainActive(domain)) await virshOk(side.uri, ['destroy', domain]);
        rmSync(bootConsole, { force: true });
        agent1.consoleFile = bootConsole;
        await virshOk(agent1.uri, ['start', domain]);
        await lease();
        at = agent1;
        continue;
      }
      const result = await probe.stop();
      await rarps.stop();
      const rarp = rarps.times()[0];
      const reply = rarp === undefined ? null : firstReplyAfter(probeLog, rarp);
      const into = to.label.startsWith('agent') ? 'agent' : 'script';
      const rarpToReplyMs = rarp === undefined || reply === null ? null : (reply - rarp) * 1000;
      const guestReply = rarp === undefined ? undefined : rarps.echoReplyTimes().find((t) => t >= rarp);
      const rarpToGuestMs = rarp === undefined || guestReply === undefined ? null : (guestReply - rarp) * 1000;
      hops.push({ into, gapMs: result.longestGapMs, qemuDowntimeMs: mig.qemuDowntimeMs, rarpToReplyMs, rarpToGuestMs });
      if (result.duplicates > 0) env.log(`ovn-migration ${at.label} → ${to.label}: duplicate replies (time target seq rtt): ${duplicateLines(probeLog).join('; ')}`);
      env.log(`ovn-migration ${at.label} → ${to.label}: gap ${result.longestGapMs.toFixed(0)} ms, qemu downtime ${mig.qemuDowntimeMs ?? '?'} ms, RARP → reply ${rarpToReplyMs?.toFixed(0) ?? '?'} ms (guest's reply on the bridge ${rarpToGuestMs?.toFixed(0) ?? '?'} ms), ${result.duplicates} duplicates`);
      at = to;
    }
    return [row(hops, hung)];
  } finally {
    for (const pidFile of dnsmasqs) await run(['sh', '-c', `[ -f ${pidFile} ] && kill $(cat ${pidFile}) || true`]);
    for (const side of sides) await side.cleanup(domain).catch(() => undefined);
    await ovn?.stop().catch(() => undefined);
  }
}

/** The probe log's replies whose (target, seq) was already answered, with the first answer. */
function duplicateLines(probeLog: string): string[] {
  const seen = new Map<string, string>();
  const out: string[] = [];
  for (const line of readFileSync(probeLog, 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [, target, seq] = line.split(' ');
    const key = `${target ?? ''} ${seq ?? ''}`;
    const first = seen.get(key);
    if (first !== undefined) out.push(`${first} / again ${line}`);
    else seen.set(key, line);
  }
  return out;
}

function row(hops: readonly Hop[], hung: readonly string[]): Row {
  const of = (k: Hop['into']): Hop[] => hops.filter((h) => h.into === k);
  const share = (k: Hop['into']): number[] => of(k).filter((h) => h.qemuDowntimeMs !== null).map((h) => h.gapMs - (h.qemuDowntimeMs ?? 0));
  const rarp = (k: Hop['into']): number[] => of(k).flatMap((h) => (h.rarpToReplyMs === null ? [] : [h.rarpToReplyMs]));
  const guest = (k: Hop['into']): number[] => of(k).flatMap((h) => (h.rarpToGuestMs === null ? [] : [h.rarpToGuestMs]));
  const ours = share('agent');
  const theirs = share('script');
  const ratio = median(ours) / median(theirs);
  const list = (xs: readonly number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
  return {
    what: WHAT,
    agent: `${median(ours).toFixed(0)} ms (p90 ${p90(ours).toFixed(0)})`,
    baseline: `${median(theirs).toFixed(0)} ms (p90 ${p90(theirs).toFixed(0)})`,
    ratio,
    target: TARGET,
    met: ratio <= 1.0 && median(ours) <= 20,
    note:
      `${of('agent').length}+${of('script').length} migrations node1↔node2 alternating agent/script targets, probe from a pod on node3; ` +
      `gap minus QEMU downtime agent [${list(ours)}], script [${list(theirs)}] ms; whole gaps agent [${list(of('agent').map((h) => h.gapMs))}], script [${list(of('script').map((h) => h.gapMs))}] ms; ` +
      `QEMU's first RARP on the target bridge → first reply median agent ${median(rarp('agent')).toFixed(0)} ms [${list(rarp('agent'))}], script ${median(rarp('script')).toFixed(0)} ms [${list(rarp('script'))}]; ` +
      `of which QEMU's first RARP → the guest's first echo reply on the target pod's bridge (the resumed guest, before any network hop) agent ${median(guest('agent')).toFixed(0)} ms [${list(guest('agent'))}], script ${median(guest('script')).toFixed(0)} ms [${list(guest('script'))}]` +
      (hung.length > 0 ? `; ${hung.length} hop(s) (into ${hung.join(', ')}) left the TCG guest silent and were redone with a fresh guest` : ''),
  };
}
