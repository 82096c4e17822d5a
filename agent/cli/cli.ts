#!/usr/bin/env node
// The virt-net-agent command: picks the subcommand module (agent/cli/cmd-<name>.ts), runs it, and turns every failure into one line and an exit code.
import { readFileSync } from 'node:fs';
import { AgentError, InputError } from '../plan/errors.js';
import type { Command } from './command.js';

const PROGRAM = 'virt-net-agent';

interface CommandEntry {
  readonly name: string;
  /** One line for the command list in `help`. */
  readonly summary: string;
  /** Commands are imported only when run, so `--version`, `help` and usage errors stay fast. */
  load(): Promise<Command>;
}

const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'plan',
    summary: 'compute the network plan for a VMI in a pod and print it as JSON',
    load: async () => (await import('./cmd-plan.js')).planCommand,
  },
  {
    name: 'discover',
    summary: "print the pod's network state (links, addresses, routes, resolv.conf, Multus status) as JSON",
    load: async () => (await import('./cmd-discover.js')).discoverCommand,
  },
  {
    name: 'setup',
    summary: 'plumb the pod for the VMI: links, addresses, sysctls, nftables (idempotent, crash-safe)',
    load: async () => (await import('./cmd-setup.js')).setupCommand,
  },
  {
    name: 'teardown',
    summary: 'undo what setup did and restore the pod interface',
    load: async () => (await import('./cmd-setup.js')).teardownCommand,
  },
  {
    name: 'explain',
    summary: "show the pod's VM plumbing live (links, NAT counters, DHCP lease) and trace a packet through the ruleset",
    load: async () => (await import('./cmd-explain.js')).explainCommand,
  },
  {
    name: 'serve',
    summary: 'serve DHCP to the guest on every planned bridge from the state dir, until SIGTERM',
    load: async () => (await import('./cmd-serve.js')).serveCommand,
  },
  {
    name: 'sidecar',
    summary: "serve KubeVirt's hook sidecar gRPC API (OnDefineDomain adds the planned interfaces) on a unix socket",
    load: async () => (await import('./cmd-sidecar.js')).sidecarCommand,
  },
  {
    name: 'passt',
    summary: 'run and supervise passt in the pod netns for a passtBinding interface (libvirt < 11.1)',
    load: async () => (await import('./cmd-passt.js')).passtCommand,
  },
  {
    name: 'domain',
    summary: 'merge the planned <interface>/<hostdev> elements into a domain XML; --define defines it in libvirt',
    load: async () => (await import('./cmd-domain.js')).domainCommand,
  },
  {
    name: 'hotplug',
    summary: 'plumb a network added to the spec and attach it to the running domain (also link-state changes)',
    load: async () => (await import('./cmd-hotplug.js')).hotplugCommand,
  },
  {
    name: 'hotunplug',
    summary: 'detach the interfaces whose spec state is absent from the running domain and tear down their plumbing',
    load: async () => (await import('./cmd-hotplug.js')).hotunplugCommand,
  },
  {
    name: 'cni',
    summary: 'act as a CNI plugin: CNI_* environment and the network configuration on stdin, the result on stdout',
    load: async () => (await import('./cmd-cni.js')).cniCommand,
  },
  {
    name: 'cni-daemon',
    summary: 'run the CNI plugin resident: the /opt/cni/bin shim forwards each ADD/DEL/CHECK to its unix socket',
    load: async () => (await import('./cmd-cni-daemon.js')).cniDaemonCommand,
  },
];

/** Subcommands the design has but that do not exist yet, so a user gets "not implemented" rather than "unknown". */
const PLANNED: readonly string[] = [];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 'help'.length) + 2;
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`);
  return `${PROGRAM}: KubeVirt's in-pod VM networking (virt-handler phase 1 and virt-launcher phase 2) as one agent.

Usage: ${PROGRAM} <command> [flags]
       ${PROGRAM} help [command]
       ${PROGRAM} --version

Commands:
${lines.join('\n')}
  ${'help'.padEnd(width)}show this text, or a command's flags
${PLANNED.length > 0 ? `\nNot implemented yet: ${PLANNED.join(', ')}.\n` : ''}
Environment:
  VIRT_NET_AGENT_DEBUG=1  print the stack trace of internal errors

Exit status: 0 success; 1 internal error; 2 bad flags or input (or a plan with errors); 3 the pod cannot satisfy the VMI.
`;
}

function version(): string {
  // agent/cli/cli.ts, dist/agent/cli/cli.js and the bundle dist/virt-net-agent.mjs sit at different depths below package.json.
  for (const rel of ['../../package.json', '../../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PROGRAM && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Try the next location.
    }
  }
  return 'unknown';
}

function findCommand(name: string): CommandEntry {
  const command = COMMANDS.find((c) => c.name === name);
  if (command !== undefined) return command;
  if ((PLANNED as readonly string[]).includes(name)) throw new InputError(name, 'command not implemented yet');
  throw new InputError(name, `unknown command (commands: ${[...COMMANDS.map((c) => c.name), 'help'].join(', ')})`);
}

async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(usage());
    return 2;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    const [topic, ...extra] = rest;
    if (extra.length > 0) throw new InputError('help', `takes at most one command name, got ${rest.length}`);
    process.stdout.write(topic === undefined ? usage() : (await findCommand(topic).load()).usage);
    return 0;
  }
  if (first === '--version' || first === 'version') {
    if (rest.length > 0) throw new InputError(first, 'takes no arguments');
    process.stdout.write(`${PROGRAM} ${version()}\n`);
    return 0;
  }
  if (first.startsWith('-')) throw new InputError(first, 'unknown flag (put flags after the command: virt-net-agent plan --vmi …)');
  const entry = findCommand(first);
  const command = await entry.load();
  try {
    return await command.run(rest);
  } catch (err) {
    throw fromParseArgsError(err, entry.name) ?? err;
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').trim();
}

/** node:util parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes; restate them as "<flag>: <problem>". */
function fromParseArgsError(err: unknown, command: string): InputError | undefined {
  const code = errorCode(err);
  if (code === undefined || !code.startsWith('ERR_PARSE_ARGS_') || !(err instanceof Error)) return undefined;
  const message = err.message;
  // The flag is quoted in the message: "Unknown option '--x'", "Option '-h, --help' does not take an argument".
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const flag = /--[^\s,<>=]+/.exec(quoted)?.[0] ?? /-[^\s,<>=-][^\s,<>=]*/.exec(quoted)?.[0];
  const seeHelp = `see: ${PROGRAM} help ${command}`;
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new InputError(flag ?? command, `unknown flag for "${command}" (${seeHelp})`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(message)) return new InputError(flag ?? command, 'takes no value');
      return new InputError(flag ?? command, 'needs a value');
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const arg = /argument '([^']*)'/.exec(message)?.[1];
      const shown = arg !== undefined ? ` ${JSON.stringify(arg)}` : '';
      return new InputError(command, `unexpected argument${shown} (${seeHelp})`);
    }
    default:
      return new InputError(flag ?? command, firstLine(message));
  }
}

/** Prints one line for any failure and returns the exit status. Stack traces only for internal errors under VIRT_NET_AGENT_DEBUG=1. */
function report(err: unknown): number {
  if (err instanceof AgentError) {
    process.stderr.write(`${PROGRAM}: ${err.oneLine()}\n`);
    return err.exitCode;
  }
  const debug = process.env['VIRT_NET_AGENT_DEBUG'] === '1';
  const message = err instanceof Error ? err.message : String(err);
  const hint = debug ? '' : ' (set VIRT_NET_AGENT_DEBUG=1 for details)';
  process.stderr.write(`${PROGRAM}: internal error: ${firstLine(message) || 'unknown'}${hint}\n`);
  if (debug && err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
  return 1;
}

// A reader that closes the pipe early (`… | head`) is not an error of ours.
process.stdout.on('error', (err) => {
  if (errorCode(err) === 'EPIPE') process.exit(process.exitCode ?? 0);
  process.exit(report(err));
});
process.on('uncaughtException', (err) => process.exit(report(err)));
process.on('unhandledRejection', (reason) => process.exit(report(reason)));

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    process.exitCode = report(err);
  },
);
