// The `cni` subcommand: one CNI plugin invocation per process (CNI_* environment and the network configuration on stdin).
//
// This is what the shim's fallback executable runs when no cni-daemon listens, and what a CNI_PATH wrapper can exec
// directly. The answer (result, version object or spec error JSON) goes to stdout, the exit code is the plugin's.
import { readFileSync } from 'node:fs';
import type { Command } from './command.js';

const USAGE = `Usage: virt-net-agent cni

Runs as a CNI plugin (spec 1.1.0; also 0.4.0 and 1.0.0): reads CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
CNI_ARGS and CNI_PATH from the environment and the network configuration from stdin, and prints the result or a
spec error object on stdout. Installed behind /opt/cni/bin/virt-net-agent (the shim), see docs/cni-runtime.md.
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

export const cniCommand: Command = {
  usage: USAGE,
  async run(args) {
    if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
      process.stdout.write(USAGE);
      return 0;
    }
    const { cniError, handleCniInvocation } = await import('../cni/invocation.js');
    // A CNI plugin takes no arguments; anything here is a usage error, reported the spec's way.
    const outcome = args.length > 0 ? cniError(4, `virt-net-agent cni: unexpected arguments ${JSON.stringify(args)}`) : await handleCniInvocation({ env: process.env, stdin: readStdin() });
    process.stdout.write(outcome.stdout);
    return outcome.exitCode;
  },
};
