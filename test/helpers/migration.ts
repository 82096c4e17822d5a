// Test helper for live migration between two agent-plumbed pods on one "node": pod sides, serve, a 10 ms ICMP probe, and virsh migrate KubeVirt-style.
//
// Layout (after /work/shared/reference/migration/): one node netns with cni0; each pod is a CNI-built netns with its own
// private libvirtd (own host_uuid) whose qemu lives in the pod. KubeVirt never lets the two launchers talk directly:
// virt-handler proxies libvirt's RPC and the migration stream between unix sockets in the pods' private folders, over
// TCP between the nodes. Here the proxies run in the node netns (`migrationTransport: Unix`), or for the legacy
// transport inside each pod on 127.0.0.1:49152, the port masquerade must not DNAT to the guest.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { agent, CLI, type AgentRun } from './agent-run.js';
import { makeCniPod, type CniPod, type CniPodOptions } from './cni.js';
import { baseDomainXml } from './guest.js';
import { startLibvirtd, type Libvirtd } from './libvirtd.js';
import { run, waitFor, type Netns } from './netns.js';

const PROXY = resolve('dist/test/helpers/byte-proxy.js');
const PROBE = resolve('test/helpers/icmp_probe.py');
const RESOLV_CONF = 'nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n';
/** Where each pod's libvirtd (its mount namespace) finds the proxied sockets: KubeVirt's private folder stand-in. */
const LIBVIRT_SOCKET_IN_POD = '/var/lib/libvirt/vna-migration-libvirt.sock';
const MIGRATION_SOCKET_IN_POD = '/var/lib/libvirt/vna-migration.sock';
/** KubeVirt's LibvirtDirectMigrationPort, used before migrationTransport Unix. */
export const LEGACY_MIGRATION_PORT = 49152;

/** A long-running child (serve, a proxy, the probe) stopped with SIGTERM and awaited. */
export interface Background {
  readonly output: () => string;
  readonly exited: () => boolean;
  stop(): Promise<void>;
}

export function background(argv: readonly string[]): Background {
  const [file, ...args] = argv;
  const child = spawn(file ?? 'false', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  return {
    output: () => output,
    exited,
    stop: () =>
      new Promise((resolveStop) => {
        if (exited()) return resolveStop();
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolveStop();
        });
        child.kill('SIGTERM');
      }),
  };
}

async function backgroundReady(argv: readonly string[], ready: RegExp, what: string, timeoutMs = 120_000): Promise<Background> {
  const bg = background(argv);
  try {
    await waitFor(async () => bg.exited() || ready.test(bg.output()), { timeoutMs, intervalMs: 50, what });
  } catch (err) {
    await bg.stop();
    throw err;
  }
  if (bg.exited()) throw new Error(`${what}: exited early: ${bg.output().trim()}`);
  return bg;
}

export async function agentOk(args: readonly string[]): Promise<AgentRun> {
  const r = await agent(args);
  if (r.code !== 0) throw new Error(`virt-net-agent ${args[0] ?? ''} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r;
}

/** One launcher pod: its CNI netns on the shared node, the agent's state dir, its libvirtd, serve and console file. */
export class PodSide {
  readonly dir: string;
  readonly stateDir: string;
  /** The serial console of the guest while it runs here; each incoming migration gets a fresh file. */
  consoleFile: string;
  private consoles = 0;
  readonly resolvConf: string;
  cni: CniPod | undefined;
  libvirtd: Libvirtd | undefined;
  serve: Background | undefined;

  constructor(readonly label: string, workDir: string) {
    this.dir = join(workDir, label);
    mkdirSync(this.dir, { recursive: true });
    this.stateDir = join(this.dir, 'state');
    this.consoleFile = join(this.dir, 'console.log');
    this.resolvConf = join(this.dir, 'resolv.conf');
    writeFileSync(this.resolvConf, RESOLV_CONF);
  }

  /** A new console file for a guest arriving here. */
  nextConsole(): string {
    this.consoles += 1;
    this.consoleFile = join(this.dir, `console-${this.consoles}.log`);
    return this.consoleFile;
  }

  get pod(): Netns {
    if (!this.cni) throw new Error(`${this.label}: no pod yet`);
    return this.cni.pod;
  }

  /** The pod's eth0 IPv4 as the CNI gave it (without prefix). */
  get podIp(): string {
    return (this.cni?.attachments[0]?.addresses[0] ?? '').split('/')[0] ?? '';
  }

  get podMac(): string {
    return this.cni?.attachments[0]?.mac ?? '';
  }

  async plumb(node: Netns, options: CniPodOptions): Promise<void> {
    this.cni = await makeCniPod({ ...options, node });
  }

  podArgs(): string[] {
    return ['--netns', this.pod.path, '--state-dir', this.stateDir, '--resolv-conf', this.resolvConf, '--hostname', 'e2e'];
  }

  file(name: string, text: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, text);
    return path;
  }

  setup(vmi: string, extra: readonly string[] = []): Promise<AgentRun> {
    return agent(['setup', '--vmi', vmi, ...extra, ...this.podArgs()]);
  }

  teardown(vmi: string): Promise<AgentRun> {
    return agent(['teardown', '--vmi', vmi, '--netns', this.pod.path, '--state-dir', this.stateDir]);
  }

  async startServe(): Promise<void> {
    await this.serve?.stop();
    this.serve = await backgroundReady([process.execPath, CLI, 'serve', '--state-dir', this.stateDir, '--netns', this.pod.path], /"msg":"serving"/, `serve in ${this.label}`);
  }

  async stopServe(): Promise<void> {
    await this.serve?.stop();
    this.serve = undefined;
  }

  async startLibvirtd(hostUuid: string): Promise<void> {
    this.libvirtd = await startLibvirtd(this.pod, { hostUuid });
  }

  get uri(): string {
    if (!this.libvirtd) throw new Error(`${this.label}: no libvirtd`);
    return this.libvirtd.uri;
  }

  /** domain --define (the agent's interfaces merged into the tiny guest's base XML), then virsh start. */
  async defineAndStart(vmi: string, name: string, cmdline: string, extra: readonly string[] = []): Promise<void> {
    const base = this.file('base.xml', baseDomainXml({ name, consoleFile: this.consoleFile, cmdline }));
    await agentOk(['domain', '--vmi', vmi, '--in', base, ...extra, ...this.podArgs(), '--define', this.uri, '--out', join(this.dir, 'domain.xml')]);
    await virshOk(this.uri, ['start', name]);
  }

  async domainActive(name: string): Promise<boolean> {
    if (!this.libvirtd) return false;
    const r = await virsh(this.uri, ['domstate', name]);
    return r.code === 0 && r.stdout.trim() === 'running';
  }

  async cleanup(domain: string): Promise<void> {
    const steps: (() => Promise<unknown>)[] = [
      async () => {
        if (this.libvirtd && (await this.domainActive(domain))) await virsh(this.uri, ['destroy', domain]);
      },
      async () => this.libvirtd?.stop(),
      async () => this.serve?.stop(),
      async () => this.cni?.cleanup(),
    ];
    for (const step of steps) await step().catch((err: unknown) => console.error(`migration cleanup ${this.label}: ${String(err)}`));
  }
}

export function virsh(uri: string, args: readonly string[], timeoutMs = 600_000): ReturnType<typeof run> {
  return run(['virsh', '-c', uri, ...args], { timeoutMs });
}

export async function virshOk(uri: string, args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await virsh(uri, args, timeoutMs);
  if (r.code !== 0) throw new Error(`virsh ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** The probe's replies and the longest silence between two consecutive replies (to any target). */
export interface ProbeResult {
  readonly sent: number;
  readonly replies: number;
  readonly perTarget: Readonly<Record<string, number>>;
  /** Replies to a (target, sequence) that had already been answered: two copies of the guest answering at once. */
  readonly duplicates: number;
  readonly longestGapMs: number;
  /** Unix seconds of the reply before and after the longest gap. */
  readonly gapFrom: number;
  readonly gapTo: number;
  readonly lastReplyAt: number;
}

export interface Probe {
  /** Replies so far (the log is line-buffered). */
  replies(): number;
  stop(): Promise<ProbeResult>;
}

/** Raw ICMP echo every `intervalS` from the node to each target (test/helpers/icmp_probe.py). */
export async function startProbe(node: Netns, logFile: string, targets: readonly string[], intervalS = 0.01): Promise<Probe> {
  const bg = background(['ip', 'netns', 'exec', node.name, 'python3', PROBE, logFile, String(intervalS), ...targets]);
  await waitFor(async () => bg.exited() || (existsSync(logFile) && readFileSync(logFile, 'utf8').startsWith('# start')), { timeoutMs: 30_000, intervalMs: 50, what: 'the probe to start' });
  if (bg.exited()) throw new Error(`probe exited: ${bg.output()}`);
  const rows = (): { t: number; target: string; seq: string }[] =>
    readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => {
        const [t, target, seq] = l.split(' ');
        return { t: Number(t), target: target ?? '', seq: seq ?? '' };
      })
      .filter((r) => Number.isFinite(r.t));
  return {
    replies: () => rows().length,
    stop: async () => {
      await bg.stop();
      const all = rows().sort((a, b) => a.t - b.t);
      const perTarget: Record<string, number> = {};
      for (const r of all) perTarget[r.target] = (perTarget[r.target] ?? 0) + 1;
      const answered = new Set(all.map((r) => `${r.target} ${r.seq}`));
      let gap = { ms: 0, from: 0, to: 0 };
      for (let i = 1; i < all.length; i++) {
        const a = all[i - 1]?.t ?? 0;
        const b = all[i]?.t ?? 0;
        if ((b - a) * 1000 > gap.ms) gap = { ms: (b - a) * 1000, from: a, to: b };
      }
      const sentLine = /# stop \S+ sent (\d+)/.exec(readFileSync(logFile, 'utf8'));
      return {
        sent: Number(sentLine?.[1] ?? 0),
        replies: all.length,
        perTarget,
        duplicates: all.length - answered.size,
        longestGapMs: gap.ms,
        gapFrom: gap.from,
        gapTo: gap.to,
        lastReplyAt: all[all.length - 1]?.t ?? 0,
      };
    },
  };
}

export interface MigrateOptions {
  readonly domain: string;
  readonly from: PodSide;
  readonly to: PodSide;
  readonly node: Netns;
  /** KubeVirt's status.migrationTransport "Unix" (proxied unix sockets), or the legacy loopback TCP port 49152. */
  readonly transport: 'unix' | 'legacy-tcp';
  /** Extra `virsh migrate` arguments (e.g. --bandwidth MiB/s). */
  readonly extraArgs?: readonly string[];
  /** Abort the job (virsh domjobabort) once it runs: a migration that fails midway. */
  readonly abort?: boolean;
  /** QEMU's downtime limit for the final stop-and-copy (virsh migrate-setmaxdowntime; libvirt's default is 300 ms). */
  readonly maxDowntimeMs?: number;
}

export interface MigrateResult {
  readonly ok: boolean;
  readonly output: string;
  readonly wallMs: number;
  /** QEMU's own figure (domjobinfo --completed "Total downtime"), when libvirt reports it. */
  readonly qemuDowntimeMs: number | null;
  /** Proxy connections seen (libvirt RPC + migration stream). */
  readonly proxyLog: string;
}

/** `virsh migrate --live --p2p` from one pod's libvirtd to the other's, through the proxies of `transport`. */
export async function migrate(o: MigrateOptions): Promise<MigrateResult> {
  const src = o.from.libvirtd;
  const dst = o.to.libvirtd;
  if (!src || !dst) throw new Error('migrate: both pods need a libvirtd');
  // The target writes its own console file (a shared one would be truncated by the target's chardev).
  const xml = (await virshOk(src.uri, ['dumpxml', '--migratable', o.domain])).split(o.from.consoleFile).join(o.to.nextConsole());
  const dstXml = o.to.file('migrate-in.xml', xml);
  const inPod = (side: Libvirtd, socketInPod: string): string => join(side.libDir, socketInPod.slice('/var/lib/libvirt/'.length));
  // virt-handler's side: node-to-node TCP between the two pods' unix sockets (loopback of the node netns here).
  const nodeProxy = [
    `unix:${inPod(src, LIBVIRT_SOCKET_IN_POD)}`, 'tcp:127.0.0.1:22222',
    'tcp:127.0.0.1:22222', `unix:${join(dst.dir, 'run', 'libvirt-sock')}`,
  ];
  const proxies: Background[] = [];
  let migrateUri: string;
  const extra: string[] = [];
  if (o.transport === 'unix') {
    nodeProxy.push(`unix:${inPod(src, MIGRATION_SOCKET_IN_POD)}`, 'tcp:127.0.0.1:22223', 'tcp:127.0.0.1:22223', `unix:${inPod(dst, MIGRATION_SOCKET_IN_POD)}`);
    migrateUri = `unix://${MIGRATION_SOCKET_IN_POD}`;
  } else {
    // Legacy: each qemu talks to 127.0.0.1:49152 in its own pod; a proxy in each pod carries it across.
    const across = join(o.to.dir, 'legacy-migration.sock');
    proxies.push(await backgroundReady(['ip', 'netns', 'exec', o.to.pod.name, process.execPath, PROXY, `unix:${across}`, `tcp:127.0.0.1:${LEGACY_MIGRATION_PORT}`], /proxy listening/, 'the target pod proxy'));
    proxies.push(await backgroundReady(['ip', 'netns', 'exec', o.from.pod.name, process.execPath, PROXY, `tcp:127.0.0.1:${LEGACY_MIGRATION_PORT}`, `unix:${across}`], /proxy listening/, 'the source pod proxy'));
    migrateUri = `tcp://127.0.0.1:${LEGACY_MIGRATION_PORT}`;
    extra.push('--listen-address', '127.0.0.1');
  }
  proxies.unshift(await backgroundReady(['ip', 'netns', 'exec', o.node.name, process.execPath, PROXY, ...nodeProxy], /proxy listening/, 'the node proxies'));
  if (o.maxDowntimeMs !== undefined) await virshOk(src.uri, ['migrate-setmaxdowntime', o.domain, String(o.maxDowntimeMs)]);
  const started = Date.now();
  try {
    const migration = virsh(src.uri, ['migrate', '--live', '--p2p', '--verbose', o.domain, `qemu+unix:///system?socket=${LIBVIRT_SOCKET_IN_POD}`, '--xml', dstXml, '--migrateuri', migrateUri, ...extra, ...(o.extraArgs ?? [])]);
    if (o.abort) {
      await waitFor(async () => /Job type:\s+Unbounded/.test((await virsh(src.uri, ['domjobinfo', o.domain])).stdout), { timeoutMs: 120_000, intervalMs: 100, what: 'the migration job to run' });
      await virshOk(src.uri, ['domjobabort', o.domain]);
    }
    const r = await migration;
    const wallMs = Date.now() - started;
    let qemuDowntimeMs: number | null = null;
    if (r.code === 0) {
      for (const uri of [src.uri, dst.uri]) {
        const info = await virsh(uri, ['domjobinfo', o.domain, '--completed']);
        const m = /Total downtime:\s+(\d+)\s*ms/.exec(info.stdout);
        if (m) {
          qemuDowntimeMs = Number(m[1]);
          break;
        }
      }
    }
    return { ok: r.code === 0, output: `${r.stdout}\n${r.stderr}`.replace(/\r/g, '\n').trim(), wallMs, qemuDowntimeMs, proxyLog: proxies.map((p) => p.output()).join('') };
  } finally {
    for (const p of proxies) await p.stop();
  }
}

/** The VMI a migration target is plumbed from: the source's VMI with the status KubeVirt keeps (MAC from the domain). */
export function withStatus(vmiYaml: string, status: { readonly mac: string; readonly migrationTransport?: 'Unix'; readonly podIps: readonly string[] }): string {
  return `${vmiYaml}status:
${status.migrationTransport ? `  migrationTransport: ${status.migrationTransport}\n` : ''}  interfaces:
  - name: default
    mac: "${status.mac}"
    infoSource: domain, guest-agent
    podInterfaceName: eth0
    ipAddress: ${status.podIps[0] ?? ''}
`;
}
