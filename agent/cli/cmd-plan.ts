// The `plan` subcommand: reads the VMI, pod state and config, runs the pure planner and prints the plan as JSON.
import { parseArgs } from 'node:util';
import type { Command } from './command.js';
import { AgentError, InputError } from '../plan/errors.js';
import { readPodState, readTextFile, STDIN_PATH } from './input.js';
import type { PlanInput } from '../plan/plan.js';
import { PLAN_INPUT_OPTIONS, readPlanInputs, rejectRepeatedFlags, required } from './plan-flags.js';

const OPTIONS = {
  ...PLAN_INPUT_OPTIONS,
  pod: { type: 'string' },
  domain: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `Usage: virt-net-agent plan --vmi FILE --pod FILE [--kubevirt-config FILE] [--phase PHASE]
                          [--arch ARCH] [--domain FILE] [--mac-policy POLICY]

Computes the network plan for one VMI in one pod and prints it as JSON on stdout.
Pure: it reads files and touches nothing. FILE may be "-" for stdin (for one flag only).

  --vmi FILE              the VirtualMachineInstance, YAML or JSON (kubectl get vmi NAME -o yaml)
  --pod FILE              the pod network state, JSON or YAML (what "discover" prints)
  --kubevirt-config FILE  the KubeVirt CR, or just its spec.configuration (default: KubeVirt's defaults)
  --phase PHASE           start (default), migration-target, hotplug, hotunplug
  --arch ARCH             amd64, arm64, s390x (default: this machine's architecture)
  --domain FILE           the running libvirt domain XML (hotplug, hotunplug, link-state changes)
  --mac-policy POLICY     pod (default): with no spec MAC the guest gets the pod interface's MAC, as in KubeVirt;
                          stable: a MAC derived from the VMI, unchanged across pod restarts

Environment:
  MY_POD_IP               the pod IP virt-handler sees; orders dual-stack addresses (IPv4 first if it is IPv4)

Exit status: 0 the plan has no errors; 2 the plan lists errors (still printed), or bad flags or input;
3 the pod cannot satisfy the VMI; 1 internal error.
`;

async function readDomainXml(path: string): Promise<string> {
  const xml = await readTextFile(path, '--domain');
  const trimmed = xml.trim();
  if (trimmed === '') throw new InputError('--domain', `${path === STDIN_PATH ? 'stdin' : path} is empty`);
  if (!trimmed.startsWith('<')) throw new InputError('--domain', 'expected libvirt domain XML (virsh dumpxml)');
  return xml;
}

async function run(args: readonly string[]): Promise<number> {
  const { values, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  rejectRepeatedFlags(tokens);

  required(values.vmi, '--vmi', 'plan');
  const podPath = required(values.pod, '--pod', 'plan');
  const configPath = values['kubevirt-config'];
  const domainPath = values.domain;
  const stdinUsers = (
    [
      ['--vmi', values.vmi],
      ['--pod', podPath],
      ['--kubevirt-config', configPath],
      ['--domain', domainPath],
    ] as const
  ).filter(([, path]) => path === STDIN_PATH);
  if (stdinUsers.length > 1) {
    throw new InputError(stdinUsers[1]![0], `stdin is already read by ${stdinUsers[0]![0]}; only one flag can be -`);
  }
  const inputs = await readPlanInputs(values, 'plan');
  const pod = await readPodState(podPath, '--pod');
  const domainXml = domainPath !== undefined ? await readDomainXml(domainPath) : undefined;

  const input: PlanInput = { ...inputs, pod, ...(domainXml !== undefined ? { domainXml } : {}) };
  // The planner pulls in every binding and the XML builder; load it only once the inputs are known to be good.
  const { computePlan } = await import('../plan/plan.js');
  const plan = computePlan(input);

  process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
  for (const error of plan.errors) {
    // Same one-line form as every other failure, so a human sees why the exit status is 2.
    process.stderr.write(`virt-net-agent: ${new AgentError(error.field, error.message).oneLine()}\n`);
  }
  return plan.errors.length > 0 ? 2 : 0;
}

export const planCommand: Command = { usage: USAGE, run };
