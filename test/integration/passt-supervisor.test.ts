// Agent-managed passt in a CNI-built pod netns: it starts as nobody in the pod netns, its socket appears, it comes back after being killed, and stop leaves nothing running.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPasstSupervisor, type PasstSupervisor } from '../../agent/passt/supervisor.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';

const CLI = join(process.cwd(), 'dist/agent/cli/cli.js');
const log = pino({ level: 'silent' });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return (line ?? '').split(/\s+/)[1] ?? '';
}

async function podPids(cni: CniPod): Promise<number[]> {
  const out = await new Promise<string>((resolve) => {
    const p = spawn('ip', ['netns', 'pids', cni.pod.name]);
    let s = '';
    p.stdout.on('data', (b: Buffer) => (s += b.toString()));
    p.on('close', () => resolve(s));
  });
  return out.split(/\s+/).filter(Boolean).map(Number);
}

describe.skipIf(!netnsAvailable())('passt supervisor (agent-managed passt)', () => {
  let cni: CniPod | undefined;
  let dir = '';
  let supervisor: PasstSupervisor | undefined;

  beforeEach(async () => {
    cni = await makeCniPod({ podCidr: '10.244.31.0/24' });
    dir = mkdtempSync(join(tmpdir(), 'vna-passt-'));
    // mkdtemp makes it 0700: passt (as nobody) must be able to reach its socket dir below it.
    chmodSync(dir, 0o755);
  }, 120_000);

  afterEach(async () => {
    await supervisor?.stop().catch(() => undefined);
    supervisor = undefined;
    await cni?.cleanup();
    cni = undefined;
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('starts passt as nobody in the pod netns, restarts it when killed, and stop leaves nothing running', async () => {
    if (!cni) throw new Error('no pod');
    const socketDir = join(dir, 'run');
    supervisor = await startPasstSupervisor({
      netnsPath: cni.pod.path,
      socketDir,
      portArgs: ['-t', '8080', '-u', '5353'],
      backoff: { initialMs: 100, maxMs: 1_000 },
      log,
    });
    await supervisor.ready(90_000);
    expect(statSync(supervisor.socketPath).isSocket()).toBe(true);
    // Root's, group nobody's, 1775: passt (nobody) binds its socket there, root's log cannot be swapped (sticky).
    const dirStat = statSync(socketDir);
    expect([dirStat.uid, dirStat.gid, dirStat.mode & 0o7777]).toEqual([0, 65534, 0o1775]);
    expect(statSync(supervisor.logFile).uid).toBe(0);
    const first = supervisor.pid();
    if (first === undefined) throw new Error('no passt pid');
    // In the pod's netns, as nobody (passt dropped privileges).
    expect(await podPids(cni)).toEqual([first]);
    expect(statusField(first, 'Uid')).toBe('65534');
    // The forwarded port is bound inside the pod netns.
    const listening = await cni.pod.execOk(['ss', '-Htln', 'sport = :8080']);
    expect(listening.stdout).toContain(':8080');
    expect(readFileSync(supervisor.logFile, 'utf8')).toContain('passt');

    process.kill(first, 'SIGKILL');
    await waitFor(async () => {
      const pid = supervisor?.pid();
      return pid !== undefined && pid !== first && existsSync(supervisor?.socketPath ?? '');
    }, { timeoutMs: 90_000, intervalMs: 100, what: 'passt to be restarted' });
    await supervisor.ready(90_000);
    const second = supervisor.pid();
    expect(second).not.toBe(first);
    expect(supervisor.starts()).toBe(2);
    expect(alive(first)).toBe(false);

    await supervisor.stop();
    expect(supervisor.pid()).toBeUndefined();
    expect(alive(second ?? 0)).toBe(false);
    expect(existsSync(supervisor.socketPath)).toBe(false);
    expect(await podPids(cni)).toEqual([]);
  }, 240_000);

  it('a socket dir that nobody cannot reach is refused with one line naming it', async () => {
    const hidden = join(dir, 'private');
    await import('node:fs/promises').then((fs) => fs.mkdir(hidden, { mode: 0o700 }));
    const err = await startPasstSupervisor({ netnsPath: cni?.pod.path ?? '', socketDir: join(hidden, 'run'), portArgs: [], log }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`${hidden} (mode 700, owner 0) is not searchable by uid 65534: passt binds its socket after dropping privileges`);
  });

  it('the passt command: ports from the VMI, one JSON line when ready, SIGTERM stops passt and exits 0', async () => {
    if (!cni) throw new Error('no pod');
    const vmi = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'vmi-passt', namespace: 'default', uid: 'u-1' },
      spec: {
        domain: { devices: { interfaces: [{ name: 'default', passtBinding: {}, ports: [{ port: 8080 }, { port: 5353, protocol: 'UDP' }] }] } },
        networks: [{ name: 'default', pod: {} }],
      },
    };
    const vmiFile = join(dir, 'vmi.json');
    writeFileSync(vmiFile, JSON.stringify(vmi));
    const socketDir = join(dir, 'cmd-run');
    const child = spawn(process.execPath, [CLI, 'passt', '--vmi', vmiFile, '--netns', cni.pod.path, '--socket-dir', socketDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => stdout.includes('\n') || child.exitCode !== null, { timeoutMs: 120_000, intervalMs: 100, what: 'the passt command to report ready' });
      if (child.exitCode !== null) throw new Error(`passt command exited ${child.exitCode}: ${stderr}`);
      const ready = JSON.parse(stdout.split('\n')[0] ?? '') as { socket: string; logFile: string; pid: number };
      expect(ready.socket).toBe(join(socketDir, 'passt.socket'));
      expect(statSync(ready.socket).isSocket()).toBe(true);
      expect(readFileSync(`/proc/${ready.pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['-t', '8080', '-u', '5353', '--foreground']));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(alive(ready.pid)).toBe(false);
      expect(existsSync(ready.socket)).toBe(false);
      expect(await podPids(cni)).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (stderr.includes('"level":50')) console.error(stderr);
    }
  }, 240_000);
});
