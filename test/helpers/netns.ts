// Shared network-namespace harness for integration tests: unique throwaway `ip netns`, command exec inside, polling.
//
// Tests must never touch the host's own links or ruleset: everything runs inside namespaces created here,
// with unique names (prefix + pid + random), and every namespace is deleted in `finally` (plus a last-resort
// sweep on process exit for namespaces a crashed test left behind).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code; 128 + signal number if killed by a signal, -1 if it could not be spawned. */
  readonly code: number;
}

export interface ExecOptions {
  /** Written to the child's stdin (then stdin is closed). */
  readonly input?: string;
  /** Kill the child (SIGKILL) after this long; default 30 s. */
  readonly timeoutMs?: number;
}

export interface Netns {
  readonly name: string;
  /** The bind-mount of the namespace: /run/netns/<name>. */
  readonly path: string;
  /** Runs argv inside the namespace (`ip netns exec <name> ...`). Never throws for a non-zero exit. */
  exec(cmd: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Like exec, but throws (with the command, exit code and stderr) on a non-zero exit. */
  execOk(cmd: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const live = new Set<string>();
let exitHookInstalled = false;

/** Runs argv on the host (used for `ip netns ...` management and by Netns.exec). */
export function run(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [file, ...args] = cmd;
  if (file === undefined) return Promise.reject(new Error('run: empty command'));
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let settled = false;
    const finish = (r: ExecResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      err.push(Buffer.from(`\n[netns harness] killed after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`));
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => finish({ stdout: '', stderr: String(e), code: -1 }));
    child.on('close', (code, signal) => {
      const sigNum = signal === null ? 0 : (signalNumber(signal) ?? 0);
      finish({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code: code ?? 128 + sigNum,
      });
    });
    // A child that exits before reading stdin raises EPIPE on the stream; the exit code tells the story.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run, but throws with stderr on a non-zero exit. */
export async function runOk(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await run(cmd, opts);
  if (r.code !== 0) throw new Error(`command failed (exit ${r.code}): ${cmd.join(' ')}\n${r.stderr.trim()}`);
  return r;
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
  return table[signal];
}

/** A unique, `ip netns`-safe name: <prefix>-<pid>-<8 hex>. */
export function uniqueNetnsName(prefix: string): string {
  const clean = prefix.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 20) || 'vna';
  return `${clean}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

function handle(name: string): Netns {
  const exec = (cmd: readonly string[], opts?: ExecOptions): Promise<ExecResult> =>
    run(['ip', 'netns', 'exec', name, ...cmd], opts);
  return {
    name,
    path: `/run/netns/${name}`,
    exec,
    async execOk(cmd, opts) {
      const r = await exec(cmd, opts);
      if (r.code !== 0) {
        throw new Error(`command failed in netns ${name} (exit ${r.code}): ${cmd.join(' ')}\n${r.stderr.trim()}`);
      }
      return r;
    },
  };
}

/** A Netns handle on a namespace file not under /run/netns (a CRI sandbox's): commands run through nsenter. */
export function netnsAt(path: string): Netns {
  const exec = (cmd: readonly string[], opts?: ExecOptions): Promise<ExecResult> => run(['nsenter', `--net=${path}`, ...cmd], opts);
  return {
    name: path,
    path,
    exec,
    async execOk(cmd, opts) {
      const r = await exec(cmd, opts);
      if (r.code !== 0) throw new Error(`command failed in ${path} (exit ${r.code}): ${cmd.join(' ')}\n${r.stderr.trim()}`);
      return r;
    },
  };
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort only: normal paths delete in `finally`. 'exit' handlers must be synchronous.
  process.on('exit', () => {
    for (const name of live) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    live.clear();
  });
}

/** Creates a uniquely named namespace with `lo` up. The caller must deleteNetns() it (use try/finally). */
export async function makeNetns(prefix: string): Promise<Netns> {
  const name = uniqueNetnsName(prefix);
  installExitHook();
  await runOk(['ip', 'netns', 'add', name]);
  live.add(name);
  try {
    await runOk(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    await deleteNetns(name);
    throw e;
  }
  return handle(name);
}

/** Deletes a namespace created by makeNetns. A namespace that is already gone is not an error. */
export async function deleteNetns(name: string): Promise<void> {
  const r = await run(['ip', 'netns', 'del', name]);
  live.delete(name);
  if (r.code !== 0 && !/No such file|does not exist|Cannot remove namespace file/i.test(r.stderr)) {
    throw new Error(`ip netns del ${name} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
}

/** Runs fn with a fresh namespace that is always deleted afterwards, even if fn throws. */
export async function withNetns<T>(prefix: string, fn: (ns: Netns) => Promise<T>): Promise<T> {
  const ns = await makeNetns(prefix);
  try {
    return await fn(ns);
  } finally {
    await deleteNetns(ns.name);
  }
}

let availability: boolean | undefined;

/**
 * True when namespace tests can run here: root, and `ip netns add/del` works. Synchronous and cached, so it
 * can gate suites: `describe.skipIf(!netnsAvailable())(...)`.
 */
export function netnsAvailable(): boolean {
  if (availability !== undefined) return availability;
  availability = false;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return availability;
  const name = uniqueNetnsName('probe');
  const add = spawnSync('ip', ['netns', 'add', name], { stdio: 'ignore' });
  if (add.status !== 0) return availability;
  const lo = spawnSync('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { stdio: 'ignore' });
  const del = spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  availability = lo.status === 0 && del.status === 0;
  return availability;
}

export interface WaitForOptions {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  /** Human description used in the timeout error ("DHCP server listening on k6t-eth0"). */
  readonly what: string;
}

/**
 * Polls cond until it resolves true; throws after timeoutMs. A cond that throws counts as "not yet", and
 * its last error is included in the timeout message.
 */
export async function waitFor(cond: () => Promise<boolean>, opts: WaitForOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await cond()) return;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      const why = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${why}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(opts.intervalMs, remaining)));
  }
}
