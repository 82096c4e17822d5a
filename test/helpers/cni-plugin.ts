// Runs our CNI plugin process like libcni does (env + the configuration on stdin, in the node netns) and checks spec errors.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { writeAgentConfig } from './agent-config.js';
import { CLI } from './agent-run.js';
import { makeCniPod, type CniPod } from './cni.js';
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

/** A CNI-built pod with a private state root and agent configuration, for running the plugin on its eth0. */
export interface PluginPod {
  /** The test's folder (a mkdtemp): the configuration and the state root are in it. */
  readonly dir: string;
  readonly stateRoot: string;
  /** The agent configuration file (stateRoot set), passed as VIRT_NET_AGENT_CONFIG. */
  readonly config: string;
  readonly cni: CniPod;
  /** The runtime's environment of `command` for the pod's eth0 (with the given CNI_ARGS, if any), `more` on top. */
  env(command: string, more?: Record<string, string>): Record<string, string>;
}

/** Makes a PluginPod before the calling describe's tests (beforeAll) and removes it after them (afterAll). */
export function usePluginPod(prefix: string, options: { readonly podCidr: string; readonly cniArgs?: string }): PluginPod {
  let made: { readonly dir: string; readonly stateRoot: string; readonly config: string; cni?: CniPod } | undefined;
  const get = (): { readonly dir: string; readonly stateRoot: string; readonly config: string; readonly cni: CniPod } => {
    if (made?.cni === undefined) throw new Error('usePluginPod: the pod exists only while the describe\'s tests run');
    return { ...made, cni: made.cni };
  };
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const stateRoot = join(dir, 'state');
    mkdirSync(stateRoot);
    made = { dir, stateRoot, config: writeAgentConfig(dir, { stateRoot }) };
    made.cni = await makeCniPod({ podCidr: options.podCidr });
  });
  afterAll(async () => {
    await made?.cni?.cleanup();
    if (made !== undefined) rmSync(made.dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return get().dir;
    },
    get stateRoot() {
      return get().stateRoot;
    },
    get config() {
      return get().config;
    },
    get cni() {
      return get().cni;
    },
    env: (command, more = {}) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: get().cni.containerId,
      CNI_NETNS: get().cni.pod.path,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
      ...(options.cniArgs !== undefined ? { CNI_ARGS: options.cniArgs } : {}),
      VIRT_NET_AGENT_CONFIG: get().config,
      ...more,
    }),
  };
}
