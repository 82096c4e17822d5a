// Runs our CNI plugin process like libcni does (env + the configuration on stdin, in the node netns) and checks spec errors.
import { expect } from 'vitest';
import { CLI } from './agent-run.js';
import type { Netns } from './netns.js';

export interface PluginRun {
  readonly code: number;
  readonly stdout: string;
  /** What the plugin reported beside its answer (JSON lines: a refused recorded namespace, …). */
  readonly stderr: string;
  readonly json: Record<string, unknown> | null;
}

/**
 * Runs our plugin once in the node netns, like libcni: env + the configuration on stdin. `config` is the agent
 * configuration passed as `--config` (as the shim passes its .conf's config= line); tests that set
 * VIRT_NET_AGENT_CONFIG in `env` instead leave it out. `wrapper` runs before it (e.g. `unshare --pid --fork`).
 */
export async function plugin(node: Netns, env: Record<string, string>, stdin: string, config?: string, wrapper: readonly string[] = []): Promise<PluginRun> {
  const argv = [...wrapper, 'env', '-i', `PATH=${process.env['PATH'] ?? ''}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, CLI, 'cni', ...(config !== undefined ? ['--config', config] : [])];
  const r = await node.exec(argv, { input: stdin, timeoutMs: 60_000 });
  let json: Record<string, unknown> | null = null;
  try {
    json = r.stdout.trim() === '' ? null : (JSON.parse(r.stdout) as Record<string, unknown>);
  } catch {
    json = null;
  }
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, json };
}

export function expectSpecError(run: PluginRun, code: number, msgPart: RegExp): void {
  expect(run.code, run.stdout).not.toBe(0);
  expect(run.json).not.toBeNull();
  expect(run.json?.['code']).toBe(code);
  expect(String(run.json?.['msg'])).toMatch(msgPart);
  expect(typeof run.json?.['cniVersion']).toBe('string');
}
