// The `setup` and `teardown` subcommands: plumb a pod for a VMI (converging, crash-safe) and undo it exactly.
import { parseArgs } from 'node:util';
import type { Command } from './command.js';
import { createNetlinkDriver } from '../drivers/netlink-driver.js';
import { AgentError, InputError } from '../plan/errors.js';
import { describeAction } from '../apply/kernel-actions.js';
import { enterNetns } from '../apply/netns.js';
import { PLAN_INPUT_OPTIONS, readPlanInputs, rejectRepeatedFlags } from './plan-flags.js';
import { POD_TARGET_OPTIONS, POD_TARGET_USAGE, podTargetFromFlags } from './pod-target.js';
import { runSetup, runTeardown } from '../apply/setup.js';
import { DEFAULT_STATE_ROOT } from '../apply/state-dir.js';

const OPTIONS = {
  ...PLAN_INPUT_OPTIONS,
  ...POD_TARGET_OPTIONS,
  'state-dir': { type: 'string' },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Test hook: exit abruptly (SIGKILL, no cleanup) right after the N-th kernel write. */
export const CRASH_ENV = 'VIRT_NET_AGENT_CRASH_AFTER_WRITES';

function crashHook(): ((count: number) => void) | undefined {
  const text = process.env[CRASH_ENV];
  if (text === undefined || text === '') return undefined;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1) throw new InputError(CRASH_ENV, `expected a positive integer, got ${JSON.stringify(text)}`);
  return (count) => {
    if (count >= limit) process.kill(process.pid, 'SIGKILL');
  };
}

const SETUP_USAGE = `Usage: virt-net-agent setup --vmi FILE [--netns PATH | --pid PID] [--kubevirt-config FILE]
                           [--state-dir DIR] [--dry-run] [--phase PHASE] [--arch ARCH] [--mac-policy POLICY]

Discovers the pod network, plans, and applies the plan's links, addresses, sysctls and nftables ruleset
(virt-handler's phase 1). Converges: a re-run with the same input makes no kernel write; a run after a crash
finishes the job. Prints a JSON summary: the kernel writes made and the actions taken.

  --vmi FILE              the VirtualMachineInstance, YAML or JSON
  --kubevirt-config FILE  the KubeVirt CR or its spec.configuration
  --state-dir DIR         default ${DEFAULT_STATE_ROOT} (one folder per VMI uid)
  --dry-run               print the actions without changing anything
  --phase, --arch, --mac-policy   as for "plan"
${POD_TARGET_USAGE}

Exit status: 0 done; 2 bad flags/input or a VMI that fails validation (nothing changed); 3 the pod cannot satisfy
the VMI (nothing changed); 4 a conflict in the pod; 1 internal error.
`;

const TEARDOWN_USAGE = `Usage: virt-net-agent teardown --vmi FILE [--netns PATH | --pid PID] [--state-dir DIR] [--dry-run]

Undoes what setup did, from the state dir: deletes the links it created, restores the pod NIC's name, MAC, MTU,
addresses and routes, the sysctls and the nftables ruleset. With no state it does nothing and succeeds (like CNI DEL).
`;

function parse(args: readonly string[]) {
  const { values, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
  rejectRepeatedFlags(tokens);
  return values;
}

async function runSetupCommand(args: readonly string[]): Promise<number> {
  const values = parse(args);
  if (values.help === true) {
    process.stdout.write(SETUP_USAGE);
    return 0;
  }
  const inputs = await readPlanInputs(values, 'setup');
  const { target, discover } = podTargetFromFlags(values);
  const onWrite = crashHook();
  if (target) enterNetns(target);
  const driver = createNetlinkDriver();
  try {
    const result = await runSetup(driver, {
      ...inputs,
      stateRoot: values['state-dir'] ?? DEFAULT_STATE_ROOT,
      discover,
      dryRun: values['dry-run'] === true,
      ...(onWrite ? { onWrite } : {}),
    });
    if (result.plan.errors.length > 0) {
      for (const error of result.plan.errors) process.stderr.write(`virt-net-agent: ${new AgentError(error.field, error.message).oneLine()}\n`);
      return 2;
    }
    const summary = {
      dryRun: values['dry-run'] === true,
      writes: result.writes,
      actions: result.actions.map(describeAction),
      networks: result.plan.networks.map((network) => ({ name: network.name, binding: network.binding, bridge: network.bridge, tap: network.tap, guestMac: network.guestMac })),
      warnings: result.plan.warnings,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  } finally {
    driver.close();
  }
}

async function runTeardownCommand(args: readonly string[]): Promise<number> {
  const values = parse(args);
  if (values.help === true) {
    process.stdout.write(TEARDOWN_USAGE);
    return 0;
  }
  const { vmi } = await readPlanInputs(values, 'teardown');
  const { target } = podTargetFromFlags(values);
  const onWrite = crashHook();
  if (target) enterNetns(target);
  const driver = createNetlinkDriver();
  try {
    const result = await runTeardown(driver, {
      vmi,
      stateRoot: values['state-dir'] ?? DEFAULT_STATE_ROOT,
      dryRun: values['dry-run'] === true,
      ...(onWrite ? { onWrite } : {}),
    });
    if (result.discardedUntrusted !== undefined) process.stderr.write(`virt-net-agent: warning: ${result.discardedUntrusted}; removed unread, nothing undone\n`);
    const discarded = result.discardedUntrusted !== undefined ? { discardedUntrusted: result.discardedUntrusted } : {};
    process.stdout.write(`${JSON.stringify({ hadState: result.hadState, writes: result.writes, actions: result.actions.map(describeAction), ...discarded }, null, 2)}\n`);
    return 0;
  } finally {
    driver.close();
  }
}

export const setupCommand: Command = { usage: SETUP_USAGE, run: runSetupCommand };
export const teardownCommand: Command = { usage: TEARDOWN_USAGE, run: runTeardownCommand };
