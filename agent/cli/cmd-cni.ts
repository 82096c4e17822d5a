// The `cni` subcommand: one CNI plugin invocation per process (CNI_* environment and the network configuration on stdin).
//
// This is what the shim's fallback executable runs when no cni-daemon listens, and what a CNI_PATH wrapper can exec
// directly. The answer (result, version object or spec error JSON) goes to stdout, the exit code is the plugin's.
// The agent configuration (host paths, API access, limits) comes from --config, VIRT_NET_AGENT_CONFIG or the default
// path, never from the network configuration; the shim passes its .conf's `config=PATH` line as --config.
import { readFileSync } from 'node:fs';
import type { Command } from './command.js';
import { AGENT_CONFIG_ENV, DEFAULT_AGENT_CONFIG_PATH } from '../cni/agent-config.js';

const USAGE = `Usage: virt-net-agent cni [--config FILE]

Runs as a CNI plugin (spec 1.1.0; also 0.4.0 and 1.0.0): reads CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
CNI_ARGS and CNI_PATH from the environment and the network configuration from stdin, and prints the result or a
spec error object on stdout. Installed behind /opt/cni/bin/virt-net-agent (the shim), see docs/cni-runtime.md.

  --config FILE   the agent configuration (state root, kubeconfig, vmiDir, limits; docs/cni.md); default
                  $${AGENT_CONFIG_ENV}, else ${DEFAULT_AGENT_CONFIG_PATH} (built-in defaults when that is absent).
                  As root, a file not owned by root or writable by group/others is refused.

Exit status: 0 success; 1 a spec error (its JSON is on stdout).
`;

/** All of stdin; empty when there is none (VERSION needs no configuration). */
function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

/** The --config value, undefined when not given, null for arguments a plugin does not take. */
function configFlag(args: readonly string[]): string | undefined | null {
  if (args.length === 0) return undefined;
  if (args.length === 2 && args[0] === '--config' && args[1] !== undefined && args[1] !== '') return args[1];
  if (args.length === 1 && args[0]?.startsWith('--config=') && args[0].length > '--config='.length) return args[0].slice('--config='.length);
  return null;
}

export const cniCommand: Command = {
  usage: USAGE,
  async run(args) {
    if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
      process.stdout.write(USAGE);
      return 0;
    }
    const { cniError, handleCniInvocation } = await import('../cni/invocation.js');
    const flag = configFlag(args);
    if (flag === null) {
      // A CNI plugin takes no other arguments; anything here is a usage error, reported the spec's way.
      process.stdout.write(cniError(4, `virt-net-agent cni: unexpected arguments ${JSON.stringify(args)} (only --config FILE)`).stdout);
      return 1;
    }
    const { defaultAgentConfig, loadAgentConfig } = await import('../cni/agent-config.js');
    const { AgentError } = await import('../plan/errors.js');
    const env = process.env;
    let outcome;
    try {
      const agent = loadAgentConfig(flag ?? env[AGENT_CONFIG_ENV]);
      // stdout is the spec's answer; what the invocation reports beside it goes to stderr as a JSON line.
      const warn = (msg: string, fields: Readonly<Record<string, unknown>>): void => void process.stderr.write(`${JSON.stringify({ level: 'warn', msg, ...fields })}\n`);
      outcome = await handleCniInvocation({ env, stdin: readStdin() }, agent, warn);
    } catch (error) {
      if (!(error instanceof AgentError)) throw error;
      // VERSION needs no configuration; every other command refuses to act on a configuration it cannot trust.
      outcome = env['CNI_COMMAND'] === 'VERSION' ? await handleCniInvocation({ env, stdin: '' }, defaultAgentConfig()) : cniError(7, error.oneLine());
    }
    process.stdout.write(outcome.stdout);
    return outcome.exitCode;
  },
};
