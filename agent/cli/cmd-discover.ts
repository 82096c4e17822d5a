// The `discover` subcommand: enters the pod's network namespace (setns, before any netlink socket) and prints the PodState JSON.
import { parseArgs } from 'node:util';
import type { Command } from './command.js';
import { discoverPodState } from '../apply/discover.js';
import { createNetlinkDriver } from '../drivers/netlink-driver.js';
import { enterNetns } from '../apply/netns.js';
import { POD_TARGET_OPTIONS, POD_TARGET_USAGE, podTargetFromFlags } from './pod-target.js';

const OPTIONS = {
  ...POD_TARGET_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

export const DISCOVER_USAGE = `Usage: virt-net-agent discover [--netns PATH | --pid PID] [--resolv-conf FILE]
                              [--network-status FILE] [--network-info FILE] [--hostname NAME]

Prints the pod's network state as JSON (what "plan --pod" reads): every link with its addresses, the main-table
routes, resolv.conf, the hostname, and the Multus network-status / KubeVirt network-info downward-API files when
present. Read-only: it changes nothing.

${POD_TARGET_USAGE}

The namespace is entered with setns(2) on the main thread before any netlink socket is opened.

Exit status: 0 success; 2 bad flags or input (e.g. no such namespace); 1 internal error.
`;

/** Runs `discover` with the arguments after the subcommand name; throws AgentError (InputError) for bad input. */
export async function runDiscover(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
  if (values.help === true) {
    process.stdout.write(DISCOVER_USAGE);
    return 0;
  }
  const { target, discover: opts } = podTargetFromFlags(values);
  // Before the driver exists: its netlink socket must be born inside the pod's namespace.
  if (target !== undefined) enterNetns(target);
  const driver = createNetlinkDriver();
  try {
    const state = await discoverPodState(driver, opts);
    process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
    return 0;
  } finally {
    driver.close();
  }
}

/** One line for the command list in `help` (agent/cli/cli.ts's COMMANDS entry). */
export const DISCOVER_SUMMARY = "print the pod's network state (links, addresses, routes, resolv.conf, Multus status) as JSON";

/** For agent/cli/cli.ts: `load: async () => (await import('./cmd-discover.js')).discoverCommand`. */
export const discoverCommand: Command = { usage: DISCOVER_USAGE, run: runDiscover };
