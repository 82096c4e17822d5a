// Runs the compiled CLI (dist/agent/cli/cli.js, or the bundle dist/virt-net-agent.mjs) as a child process, and dumps a namespace for exact before/after comparisons.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Netns } from './netns.js';

export const CLI = join(process.cwd(), 'dist/agent/cli/cli.js');
/** The bundle the image runs: this entry file plus dist/chunks/ (scripts/bundle.mjs). */
export const BUNDLE = join(process.cwd(), 'dist/virt-net-agent.mjs');

export interface AgentRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node dist/agent/cli/cli.js ARGS` with extra environment; never rejects for a non-zero exit. */
export function agent(args: readonly string[], env: Record<string, string> = {}): Promise<AgentRun> {
  return runProgram(CLI, args, env);
}

/** `node PROGRAM ARGS` (CLI or BUNDLE) with extra environment; never rejects for a non-zero exit. */
export function runProgram(program: string, args: readonly string[], env: Record<string, string> = {}): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [program, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The setup summary the CLI prints. */
export interface SetupSummary {
  readonly writes: number;
  readonly actions: readonly string[];
  readonly networks: readonly { name: string; binding: string; bridge: string | null; tap: string | null; guestMac: string | null }[];
}

/** Every sysctl any binding writes; all of them are part of the dump. */
export const DUMPED_SYSCTLS = [
  'net.ipv4.conf.all.arp_ignore',
  'net.ipv4.ip_forward',
  'net.ipv6.conf.all.forwarding',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
] as const;

/** The namespace as `ip -j` and `nft` print it, minus what the kernel varies on its own (counters, link-local). */
export async function dumpNetns(pod: Netns, options: { ignoreMacOf?: readonly string[] } = {}): Promise<unknown> {
  const links = JSON.parse((await pod.execOk(['ip', '-j', 'link', 'show'])).stdout) as Record<string, unknown>[];
  const addrs = JSON.parse((await pod.execOk(['ip', '-j', 'addr', 'show'])).stdout) as { ifname: string; addr_info: Record<string, unknown>[] }[];
  const routes = JSON.parse((await pod.execOk(['ip', '-j', 'route', 'show', 'table', 'all'])).stdout) as Record<string, unknown>[];
  const routes6 = JSON.parse((await pod.execOk(['ip', '-6', '-j', 'route', 'show', 'table', 'all'])).stdout) as Record<string, unknown>[];
  const nft = (await pod.execOk(['nft', 'list', 'ruleset'])).stdout.replace(/counter packets \d+ bytes \d+/g, 'counter').replace(/^(\s*)packets \d+ bytes \d+$/gm, '$1packets bytes');
  const sysctls: Record<string, string> = {};
  for (const name of DUMPED_SYSCTLS) sysctls[name] = (await pod.execOk(['sysctl', '-n', name])).stdout.trim().replace(/\s+/g, ' ');
  return {
    links: links
      .map((link) => ({
        name: link['ifname'],
        mac: options.ignoreMacOf?.includes(String(link['ifname'])) ? '(random)' : link['address'],
        mtu: link['mtu'],
        master: link['master'] ?? null,
        up: (link['flags'] as string[]).includes('UP'),
      }))
      .sort((a, b) => String(a.name).localeCompare(String(b.name))),
    addresses: addrs
      .flatMap((link) =>
        link.addr_info
          .filter((info) => !(info['family'] === 'inet6' && String(info['local']).startsWith('fe80')))
          .map((info) => `${link.ifname} ${String(info['local'])}/${String(info['prefixlen'])}`),
      )
      .sort(),
    routes: [...routes, ...routes6]
      .filter((route) => !(String(route['dst']).startsWith('fe80') || String(route['dst']).startsWith('ff00') || route['type'] === 'multicast'))
      .map((route) => `${String(route['table'] ?? 'main')} ${String(route['type'] ?? '')} ${String(route['dst'])} via ${String(route['gateway'] ?? '-')} dev ${String(route['dev'])}`)
      .sort(),
    nft,
    sysctls,
  };
}

/** Parses and returns the setup summary, failing with the agent's stderr when it did not succeed. */
export function setupSummary(run: AgentRun): SetupSummary {
  if (run.code !== 0) throw new Error(`setup failed (exit ${String(run.code)}): ${run.stderr.trim()}`);
  return JSON.parse(run.stdout) as SetupSummary;
}
