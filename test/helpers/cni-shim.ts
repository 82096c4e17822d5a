// Runs the CNI plugin the way a runtime does (the static shim from dist/cni, env + stdin), and a cni-daemon process for it to talk to.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { BUNDLE } from './agent-run.js';
import { waitFor } from './netns.js';

/** The shim as built by scripts/build-cni.mjs, and the fallback executable beside it. */
export const SHIM = join(process.cwd(), 'dist/cni/virt-net-agent');
export const FALLBACK_DIR = join(process.cwd(), 'dist/cni/virt-net-agent.d');

export interface ProgramRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file` with exactly `env` (nothing inherited) and `stdin`; never rejects for a non-zero exit. */
export function runWithEnv(file: string, env: Record<string, string>, stdin: string, args: readonly string[] = []): Promise<ProgramRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    // Bytes first, text at the end: a chunk boundary may split a UTF-8 character.
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

/** True once something accepts connections on the unix socket. */
export function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export interface DaemonProcess {
  readonly socket: string;
  readonly child: ChildProcess;
  /** Its stdout so far (pino JSON lines). */
  output(): string;
  /** SIGTERM, and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** The daemon's pino lines so far, parsed. */
export function daemonLogLines(daemon: DaemonProcess): Record<string, unknown>[] {
  return daemon
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

export interface DaemonOptions {
  /** The agent configuration file (test/helpers/agent-config.ts); every daemon a test starts has its own. */
  readonly config: string;
  readonly env?: Record<string, string>;
  /** Runs `executable cni-daemon …` (the fallback executable, as install-cni.sh deploys it) instead of the bundle. */
  readonly executable?: string;
  /** Runs it under this command, e.g. `ip netns exec NODE` (the runtime's namespace). */
  readonly wrapper?: readonly string[];
}

/** `node dist/virt-net-agent.mjs cni-daemon --config FILE --socket PATH`, resolved once it accepts connections. */
export async function startDaemonProcess(socket: string, options: DaemonOptions): Promise<DaemonProcess> {
  const { config, env = {}, executable, wrapper = [] } = options;
  const flags = ['cni-daemon', '--config', config, '--socket', socket];
  const argv = [...wrapper, ...(executable === undefined ? [process.execPath, BUNDLE] : [executable]), ...flags];
  const [file = '', ...args] = argv;
  const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    // Its own "listening" line, not just a socket that accepts (that may be another daemon's).
    await Promise.race([
      waitFor(async () => /"msg":"cni-daemon listening"/.test(out) && (await socketAccepts(socket)), { timeoutMs: 20_000, intervalMs: 20, what: `cni-daemon on ${socket}` }),
      exited.then((code) => {
        throw new Error(`cni-daemon exited ${String(code)}: ${err.trim()}`);
      }),
    ]);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    socket,
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
