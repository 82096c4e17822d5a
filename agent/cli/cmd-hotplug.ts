// The `hotplug` and `hotunplug` subcommands: plumb (or tear down) a network for a running domain and attach/detach/update its device in libvirt.
import { parseArgs } from 'node:util';
import { aliasOfFragment, applyDomainOperations, waitForDeviceGone } from '../../domain/libvirt/operations.js';
import { connectLibvirt, type DomainHandle, type LibvirtClient } from '../../domain/libvirt/client.js';
import type { Command } from './command.js';
import { assertSupported, printPlanErrors, recordedIdentities } from './cmd-domain.js';
import { discoverPodState } from '../apply/discover.js';
import { createNetlinkDriver } from '../drivers/netlink-driver.js';
import { InputError } from '../plan/errors.js';
import { describeAction } from '../apply/kernel-actions.js';
import { enterNetns } from '../apply/netns.js';
import type { DomainOperation, Phase, Plan } from '../plan/plan-types.js';
import { readPlanInputs, rejectRepeatedFlags, required, type PlanInputs } from './plan-flags.js';
import { POD_TARGET_OPTIONS, POD_TARGET_USAGE, podTargetFromFlags } from './pod-target.js';
import { runSetup } from '../apply/setup.js';
import { DEFAULT_STATE_ROOT } from '../apply/state-dir.js';

const OPTIONS = {
  vmi: { type: 'string' },
  'kubevirt-config': { type: 'string' },
  arch: { type: 'string' },
  'mac-policy': { type: 'string' },
  ...POD_TARGET_OPTIONS,
  domain: { type: 'string' },
  uri: { type: 'string' },
  network: { type: 'string' },
  'state-dir': { type: 'string' },
  'detach-timeout': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const COMMON = `  --vmi FILE              the VirtualMachineInstance (the desired spec), YAML or JSON
  --domain NAME           the running libvirt domain
  --uri URI               libvirt connection, e.g. qemu:///system or qemu:///system?socket=PATH
  --network NAME          act on this network only (default: every change the spec implies)
  --state-dir DIR         default ${DEFAULT_STATE_ROOT}
  --kubevirt-config, --arch, --mac-policy   as for "plan"
${POD_TARGET_USAGE}`;

const HOTPLUG_USAGE = `Usage: virt-net-agent hotplug --vmi FILE --domain NAME --uri URI [--network NAME]
                             [--netns PATH | --pid PID] [--state-dir DIR]

Brings the running domain to the VMI spec: runs setup (plumbs a network that is new in the spec; the others
are already converged and see no write), then attaches each new interface (attachDeviceFlags, LIVE|CONFIG)
and applies link-state changes of plugged ones (spec state up/down → updateDeviceFlags, LIVE|CONFIG).
Prints a JSON summary.

${COMMON}

Exit status: 0 done; 2 bad flags/input or a plan with errors; 3 the pod or libvirt cannot run it; 1 internal
or libvirt error.
`;

const HOTUNPLUG_USAGE = `Usage: virt-net-agent hotunplug --vmi FILE --domain NAME --uri URI [--network NAME]
                               [--netns PATH | --pid PID] [--state-dir DIR] [--detach-timeout SECONDS]

Removes each interface whose spec state is "absent": detachDeviceFlags (LIVE|CONFIG), waits until the guest
released it (default 120 s), then deletes its bridge, tap and keeper in the pod. Prints a JSON summary.

${COMMON}
  --detach-timeout SEC    how long to wait for the guest to release the device (default 120)

Exit status as for "hotplug".
`;

function parse(args: readonly string[]) {
  const { values, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
  rejectRepeatedFlags(tokens);
  return values;
}

type Values = ReturnType<typeof parse>;

interface Session {
  readonly inputs: PlanInputs;
  readonly stateRoot: string;
  readonly client: LibvirtClient;
  readonly domain: DomainHandle;
}

async function openSession(values: Values, command: string): Promise<Session> {
  const domainName = required(values.domain, '--domain', command);
  const uri = required(values.uri, '--uri', command);
  if (values.network === '') throw new InputError('--network', 'needs a network name');
  const inputs = await readPlanInputs({ ...values, phase: undefined }, command);
  const { target } = podTargetFromFlags(values);
  if (target) enterNetns(target);
  const client = await connectLibvirt(uri);
  try {
    const domain = await client.lookup(domainName);
    return { inputs, stateRoot: values['state-dir'] ?? DEFAULT_STATE_ROOT, client, domain };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/** The plan for `phase` against the live domain XML and the pod as it is now (identities from the state dir). */
async function livePlan(session: Session, values: Values, phase: Phase): Promise<Plan> {
  const { discover } = podTargetFromFlags(values);
  const driver = createNetlinkDriver();
  let pod;
  try {
    pod = await discoverPodState(driver, discover);
  } finally {
    driver.close();
  }
  const domainXml = await session.client.xmlDesc(session.domain);
  const { computePlan } = await import('../plan/plan.js');
  return computePlan({ ...session.inputs, phase, pod, domainXml, priorIdentities: recordedIdentities(session.stateRoot, session.inputs.vmi) });
}

function selectOperations(plan: Plan, network: string | undefined, kinds: readonly DomainOperation['op'][]): DomainOperation[] {
  const ops = plan.domain.operations.filter((op) => kinds.includes(op.op) && (network === undefined || op.network === network));
  if (network !== undefined && ops.length === 0 && !plan.networks.some((n) => n.name === network)) {
    const known = plan.networks.map((n) => n.name);
    const why = plan.warnings.find((w) => w.includes(`"${network}"`));
    throw new InputError('--network', `${network}: nothing to do (${why ?? `networks in this plan: ${known.join(', ') || 'none'}`})`);
  }
  return ops;
}

async function runSetupPhase(session: Session, values: Values, phase: Phase) {
  const { discover } = podTargetFromFlags(values);
  const driver = createNetlinkDriver();
  try {
    return await runSetup(driver, { ...session.inputs, phase, stateRoot: session.stateRoot, discover, dryRun: false });
  } finally {
    driver.close();
  }
}

async function runHotplug(args: readonly string[]): Promise<number> {
  const values = parse(args);
  if (values.help === true) {
    process.stdout.write(HOTPLUG_USAGE);
    return 0;
  }
  const session = await openSession(values, 'hotplug');
  try {
    // Plumb first (KubeVirt's phase 1 for the new network), in the spec's full form so the other networks converge.
    const setup = await runSetupPhase(session, values, 'start');
    if (printPlanErrors(setup.plan)) return 2;
    const plan = await livePlan(session, values, 'hotplug');
    if (printPlanErrors(plan)) return 2;
    const operations = selectOperations(plan, values.network, ['attach', 'update']);
    assertSupported({ ...plan, domain: { ...plan.domain, interfaces: operations.filter((o) => o.op === 'attach').map((o) => o.xml) } }, await session.client.libVersion());
    const applied = await applyDomainOperations(session.client, session.domain, operations);
    const summary = { domain: session.domain.name, setupWrites: setup.writes, setupActions: setup.actions.map(describeAction), applied, warnings: plan.warnings };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  } finally {
    await session.client.close();
  }
}

async function runHotunplug(args: readonly string[]): Promise<number> {
  const values = parse(args);
  if (values.help === true) {
    process.stdout.write(HOTUNPLUG_USAGE);
    return 0;
  }
  const timeoutText = values['detach-timeout'] ?? '120';
  const timeoutSeconds = Number(timeoutText);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new InputError('--detach-timeout', `expected seconds > 0, got ${JSON.stringify(timeoutText)}`);
  const session = await openSession(values, 'hotunplug');
  try {
    const plan = await livePlan(session, values, 'hotunplug');
    if (printPlanErrors(plan)) return 2;
    const operations = selectOperations(plan, values.network, ['detach']);
    const applied = await applyDomainOperations(session.client, session.domain, operations);
    const waitedMs: Record<string, number> = {};
    for (const op of operations) {
      const alias = aliasOfFragment(op.xml);
      if (alias !== null) waitedMs[op.network] = await waitForDeviceGone(session.client, session.domain, alias, timeoutSeconds * 1000);
    }
    // The guest no longer holds the tap: delete the network's bridge, tap and keeper.
    const teardown = await runSetupPhase(session, values, 'hotunplug');
    const summary = {
      domain: session.domain.name,
      applied,
      releasedAfterMs: waitedMs,
      teardownWrites: teardown.writes,
      teardownActions: teardown.actions.map(describeAction),
      warnings: plan.warnings,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  } finally {
    await session.client.close();
  }
}

export const hotplugCommand: Command = { usage: HOTPLUG_USAGE, run: runHotplug };
export const hotunplugCommand: Command = { usage: HOTUNPLUG_USAGE, run: runHotunplug };
