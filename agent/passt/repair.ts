// Migration hook: runs passt-repair on the migration source (the passt *.socket.repair socket) or target (the passt dir), KubeVirt's semantics.
//
// As virt-handler (pkg/network/passt/repair.go): one run per VMI at a time (a second request while one runs is
// ignored), 60 s limit then SIGKILL, and any failure is only logged: a repair problem never fails the migration.
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

export const PASST_REPAIR_BINARY = 'passt-repair';
export const PASST_REPAIR_TIMEOUT_MS = 60_000;
/** passt's repair socket is its socket path plus ".repair"; KubeVirt looks for this suffix. */
export const REPAIR_SOCKET_SUFFIX = '.socket.repair';

export type RepairOutcome =
  | { readonly status: 'ok'; readonly arg: string }
  | { readonly status: 'failed'; readonly arg: string; readonly exitCode: number | null; readonly signal: string | null; readonly output: string }
  | { readonly status: 'timeout'; readonly arg: string; readonly output: string }
  | { readonly status: 'missing-binary'; readonly arg: string; readonly binary: string }
  | { readonly status: 'no-repair-socket'; readonly dir: string }
  | { readonly status: 'already-running' };

export interface RepairOptions {
  readonly log: Logger;
  /** Default "passt-repair" from PATH. */
  readonly binary?: string;
  /** Default 60 s. */
  readonly timeoutMs?: number;
}

const MAX_OUTPUT = 4096;

/** Runs `binary arg` in its own process group; the whole group is killed at the deadline. Never rejects. */
function runOnce(binary: string, arg: string, timeoutMs: number): Promise<RepairOutcome> {
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    let settled = false;
    const finish = (outcome: RepairOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const child = spawn(binary, [arg], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const collect = (chunk: Buffer): void => {
      if (output.length < MAX_OUTPUT) output += chunk.toString('utf8').slice(0, MAX_OUTPUT - output.length);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') finish({ status: 'missing-binary', arg, binary });
      else finish({ status: 'failed', arg, exitCode: null, signal: null, output: `${output}${err.message}` });
    });
    // 'exit', not 'close': a grandchild still holding the pipes must not delay the verdict.
    child.on('exit', (code, signal) => {
      if (timedOut) finish({ status: 'timeout', arg, output: output.trim() });
      else if (code === 0) finish({ status: 'ok', arg });
      else finish({ status: 'failed', arg, exitCode: code, signal, output: output.trim() });
    });
  });
}

/** The first `*.socket.repair` entry in the passt dir (as KubeVirt's findRepairSocketInDir), or null. */
export async function findRepairSocket(passtDir: string): Promise<string | null> {
  let names: string[];
  try {
    names = await readdir(passtDir);
  } catch {
    return null;
  }
  const match = names.filter((name) => name.endsWith(REPAIR_SOCKET_SUFFIX)).sort()[0];
  return match === undefined ? null : join(passtDir, match);
}

/** Runs passt-repair for migrations; one run per VMI key at a time. Methods never reject. */
export class PasstRepair {
  private readonly active = new Set<string>();
  private readonly binary: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: RepairOptions) {
    this.binary = options.binary ?? PASST_REPAIR_BINARY;
    this.timeoutMs = options.timeoutMs ?? PASST_REPAIR_TIMEOUT_MS;
  }

  /** Source side: `passt-repair <dir>/<name>.socket.repair`. */
  source(vmiKey: string, passtDir: string): Promise<RepairOutcome> {
    return this.guarded(vmiKey, async () => {
      const socket = await findRepairSocket(passtDir);
      if (socket === null) return { status: 'no-repair-socket', dir: passtDir };
      return runOnce(this.binary, socket, this.timeoutMs);
    });
  }

  /** Target side: `passt-repair <dir>` (passt-repair waits there for the target passt's repair socket). */
  target(vmiKey: string, passtDir: string): Promise<RepairOutcome> {
    return this.guarded(vmiKey, () => runOnce(this.binary, passtDir, this.timeoutMs));
  }

  private async guarded(vmiKey: string, work: () => Promise<RepairOutcome>): Promise<RepairOutcome> {
    const { log } = this.options;
    if (this.active.has(vmiKey)) {
      log.info({ vmi: vmiKey }, 'passt-repair already running for this VMI; request ignored');
      return { status: 'already-running' };
    }
    this.active.add(vmiKey);
    try {
      const outcome = await work().catch(
        (err: unknown): RepairOutcome => ({ status: 'failed', arg: '', exitCode: null, signal: null, output: String(err) }),
      );
      if (outcome.status === 'ok') log.info({ vmi: vmiKey, arg: outcome.arg }, 'passt-repair completed');
      else log.error({ vmi: vmiKey, ...outcome }, `passt-repair did not complete (${outcome.status}); the migration goes on without it`);
      return outcome;
    } finally {
      this.active.delete(vmiKey);
    }
  }
}
