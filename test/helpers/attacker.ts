// The launcher's user as an attacker (uid/gid 107, no groups, no capabilities, via setpriv) and a private mount namespace in which a root run may write kernel sysctls without reaching the machine's own.
import { spawn } from 'node:child_process';
import { run, type ExecResult } from './netns.js';
import { CLI } from './agent-run.js';

export const LAUNCHER_UID = 107;

/** Runs a shell script as the launcher's user: uid/gid 107, no supplementary groups, no capabilities. */
export function asLauncher(script: string, env: Record<string, string> = {}): Promise<ExecResult> {
  const assignments = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  return run(['setpriv', `--reuid=${LAUNCHER_UID}`, `--regid=${LAUNCHER_UID}`, '--clear-groups', '--inh-caps=-all', 'env', ...assignments, 'sh', '-c', script]);
}

export interface FakeKernelRun extends ExecResult {
  /** /proc/sys/kernel/core_pattern of the private namespace after the run (it starts as "core"). */
  readonly corePattern: string;
}

/**
 * Runs the CLI as root in a private mount namespace (unshare --mount) whose /proc/sys/kernel is a tmpfs holding a
 * fake core_pattern file ("core"): a forged record that makes root write kernel.core_pattern writes that file, never
 * the machine's own (which is global to every namespace).
 */
export async function agentWithFakeKernelSysctls(args: readonly string[]): Promise<FakeKernelRun> {
  const script = [
    'mount -t tmpfs vna-fake-kernel /proc/sys/kernel || exit 90',
    'printf core > /proc/sys/kernel/core_pattern || exit 91',
    '"$0" "$@"',
    'code=$?',
    'printf "\\n@@core_pattern=%s@@\\n" "$(cat /proc/sys/kernel/core_pattern)" >&2',
    'exit $code',
  ].join('\n');
  const result = await run(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, process.execPath, CLI, ...args], { timeoutMs: 120_000 });
  const match = /\n@@core_pattern=([^]*?)@@\n$/.exec(result.stderr);
  if (match === null) throw new Error(`the private mount namespace did not report core_pattern (exit ${result.code}): ${result.stderr}`);
  return { ...result, stderr: result.stderr.slice(0, match.index), corePattern: match[1] ?? '' };
}

/**
 * Starts the CLI so that its PID is known before it runs (the shell prints $$, waits for a line, then execs node in
 * place): what an attacker spraying PID-named files achieves. go() lets it run and resolves with its result.
 */
export async function agentWithKnownPid(args: readonly string[]): Promise<{ readonly pid: number; go(): Promise<ExecResult> }> {
  const child = spawn('sh', ['-c', 'echo $$; read go; exec "$0" "$@"', process.execPath, CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  const pid = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      stdout += chunk.toString();
      const newline = stdout.indexOf('\n');
      if (newline < 0) return;
      child.stdout.off('data', onData);
      const text = stdout.slice(0, newline);
      stdout = stdout.slice(newline + 1);
      child.stdout.on('data', (more: Buffer) => (stdout += more.toString()));
      resolve(Number(text));
    };
    child.stdout.on('data', onData);
    child.on('error', reject);
  });
  return {
    pid,
    go: async () => {
      child.stdin.end('go\n');
      const code = await closed;
      return { code, stdout, stderr };
    },
  };
}
