// Test helper: a private libvirtd inside a pod netns (own config, sockets, state and logs under a temp dir), so tests never share the host's libvirt.
//
// `ip netns exec` runs the command in a new mount namespace (mounts are slaves of the host's, never propagated
// back), so bind-mounting private folders over /etc/libvirt, /run/libvirt, /var/lib/libvirt and /var/log/libvirt
// there affects this libvirtd (and its qemu children) only. The QEMU capability cache is shared across runs in
// .cache/libvirt-cache: the first connection of a fresh cache probes QEMU for ~8 s (much longer on a loaded box).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connectLibvirt } from '../../domain/libvirt/client.js';
import type { Netns } from './netns.js';
import { waitFor } from './netns.js';

export interface Libvirtd {
  /** qemu:///system?socket=… (the private socket). */
  readonly uri: string;
  readonly dir: string;
  /** The host path that this libvirtd (and its qemu) see as /var/lib/libvirt. */
  readonly libDir: string;
  readonly logFile: string;
  /** Kills leftover qemu processes (from their pid files), stops libvirtd, removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const CAPS_CACHE = resolve('.cache/libvirt-cache');

/** Why libvirtd-based tests cannot run here, or null when they can. */
export function libvirtdMissing(): string | null {
  for (const bin of ['libvirtd', 'qemu-system-x86_64']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed (scripts/setup.sh installs it)`;
  }
  if (!existsSync('/etc/libvirt/qemu.conf')) return '/etc/libvirt/qemu.conf is missing (libvirt-daemon-system)';
  return null;
}

/** qemu.conf additions: run qemu as root without virtlogd, no security labelling, no per-VM /dev namespace. */
const QEMU_CONF = `
# --- virt-net-agent e2e (private copy) ---
user = "root"
group = "root"
stdio_handler = "file"
security_driver = "none"
namespaces = [ ]
`;

function privateConfig(dir: string): string {
  const etc = join(dir, 'etc');
  cpSync('/etc/libvirt', etc, { recursive: true });
  appendFileSync(join(etc, 'qemu.conf'), QEMU_CONF);
  // No libvirt-managed networks (the default one would add virbr0 + dnsmasq to the pod).
  rmSync(join(etc, 'qemu', 'networks'), { recursive: true, force: true });
  mkdirSync(join(etc, 'qemu', 'networks'), { recursive: true });
  return etc;
}

function killQemus(dir: string): void {
  const pidDir = join(dir, 'run', 'qemu');
  if (!existsSync(pidDir)) return;
  for (const file of readdirSync(pidDir).filter((f) => f.endsWith('.pid'))) {
    const pid = Number(readFileSync(join(pidDir, file), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolveExit();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveExit();
    });
  });
}

/** Starts libvirtd in `pod` and waits until its socket answers (including the first-connection QEMU probe). */
export async function startLibvirtd(pod: Netns, opts: { readyTimeoutMs?: number; hostUuid?: string } = {}): Promise<Libvirtd> {
  const dir = mkdtempSync(join(tmpdir(), 'vna-libvirtd-'));
  const etc = privateConfig(dir);
  // Migration refuses a target with the source's host UUID; without DMI each start picks a random one, so pin it.
  if (opts.hostUuid !== undefined) appendFileSync(join(etc, 'libvirtd.conf'), `\nhost_uuid = "${opts.hostUuid}"\n`);
  for (const sub of ['run', 'lib', 'log']) mkdirSync(join(dir, sub), { recursive: true });
  mkdirSync(CAPS_CACHE, { recursive: true });
  const logFile = join(dir, 'libvirtd.log');
  const socket = join(dir, 'run', 'libvirt-sock');
  const uri = `qemu:///system?socket=${socket}`;
  const script = [
    'set -e',
    'mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt',
    `mount --bind ${etc} /etc/libvirt`,
    `mount --bind ${join(dir, 'run')} /run/libvirt`,
    `mount --bind ${join(dir, 'lib')} /var/lib/libvirt`,
    `mount --bind ${CAPS_CACHE} /var/cache/libvirt`,
    `mount --bind ${join(dir, 'log')} /var/log/libvirt`,
    `exec libvirtd --pid-file ${join(dir, 'libvirtd.pid')}`,
  ].join('\n');
  const child = spawn('ip', ['netns', 'exec', pod.name, 'sh', '-c', script], {
    env: { ...process.env, LIBVIRT_LOG_OUTPUTS: `3:file:${logFile}` },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    killQemus(dir);
    child.kill('SIGTERM');
    await exited(child, 15_000);
    killQemus(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => child.exitCode !== null || existsSync(socket), { timeoutMs: 60_000, intervalMs: 100, what: 'libvirtd socket' });
    if (child.exitCode !== null) throw new Error(`libvirtd exited (${child.exitCode}): ${stderr.trim()}`);
    // The first call triggers the QEMU capability probe: do it here, with a generous deadline.
    let timer: NodeJS.Timeout | undefined;
    const client = await Promise.race([
      connectLibvirt(uri),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('libvirtd did not answer')), opts.readyTimeoutMs ?? 600_000))),
    ]).finally(() => clearTimeout(timer)); // a pending deadline would keep a script's process alive for 10 minutes
    try {
      await client.libVersion();
    } finally {
      await client.close();
    }
    return { uri, dir, libDir: join(dir, 'lib'), logFile, stop };
  } catch (err) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-1500) : '';
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${log}`);
  }
}

/** Writes `text` to a file in dir and returns its path. */
export function writeIn(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
