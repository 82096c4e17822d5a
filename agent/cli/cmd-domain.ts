// The `domain` subcommand: merges the planned <interface>/<hostdev>/<memoryBacking> into a domain XML and optionally defines it in libvirt.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { listDomainInterfaces, mergeDevices } from '../../domain/domain-xml.js';
import { unsupportedDevices } from '../../domain/libvirt-capabilities.js';
import { connectLibvirt } from '../../domain/libvirt/client.js';
import type { LibvirtVersion } from '../../domain/libvirt-version.js';
import type { Command } from './command.js';
import { discoverPodState } from '../apply/discover.js';
import { createNetlinkDriver } from '../drivers/netlink-driver.js';
import { AgentError, InputError, PlanError } from '../plan/errors.js';
import { readPodState, readTextFile } from './input.js';
import { enterNetns } from '../apply/netns.js';
import { attachPasstByStream, passtAttachmentFor, toUserPasst, type PasstAttachment } from '../passt/domain-form.js';
import type { Plan, PodIdentity } from '../plan/plan-types.js';
import { oneOf, PLAN_INPUT_OPTIONS, readPlanInputs, rejectRepeatedFlags, required, type PlanInputs } from './plan-flags.js';
import type { PodState } from '../plan/pod-state.js';
import { POD_TARGET_OPTIONS, POD_TARGET_USAGE, podTargetFromFlags, type PodTargetValues } from './pod-target.js';
import { vmiKey } from '../apply/setup.js';
import { DEFAULT_STATE_ROOT, readLauncherView, StateDir } from '../apply/state-dir.js';

const OPTIONS = {
  ...PLAN_INPUT_OPTIONS,
  ...POD_TARGET_OPTIONS,
  in: { type: 'string' },
  pod: { type: 'string' },
  'state-dir': { type: 'string' },
  define: { type: 'string' },
  'libvirt-version': { type: 'string' },
  'passt-form': { type: 'string' },
  'passt-socket': { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `Usage: virt-net-agent domain --vmi FILE --in DOMAIN.xml [--pod FILE | --netns PATH | --pid PID]
                            [--state-dir DIR] [--define URI | --libvirt-version X.Y] [--out FILE]
                            [--passt-form FORM [--passt-socket PATH]]
                            [--kubevirt-config FILE] [--arch ARCH] [--mac-policy POLICY]

Merges the planned devices into a domain XML: each <interface>/<hostdev> replaces the one with the same
<alias name='ua-NAME'> or is appended to <devices>; <memoryBacking> gets what vhost-user needs. Everything
else (unknown elements, comments, the qemu namespace, <qemu:commandline>) is kept. Prints the XML (or writes
--out). With --define, checks the connected libvirt's version against the devices and defines the domain.

  --in FILE               the base domain XML
  --pod FILE              the pod network state (what "discover" prints); without it the pod is discovered
                          in --netns/--pid (or the current namespace), after setup as before
  --state-dir DIR         where setup recorded the pod interfaces' identities (default ${DEFAULT_STATE_ROOT})
  --define URI            define the result in libvirt (e.g. qemu:///system, qemu:///system?socket=PATH)
  --libvirt-version X.Y   check the devices against this libvirt version without connecting
  --passt-form FORM       how a passtBinding interface attaches: vhostuser (default, KubeVirt's form, libvirt
                          >= 11.1), user (type='user' + passt backend, libvirt 9.1-11.0), stream (agent-managed
                          passt through qemu -netdev stream, any libvirt; needs --passt-socket), or auto (by the
                          libvirt version of --define/--libvirt-version)
  --passt-socket PATH     the socket of "virt-net-agent passt" (stream form)
  --out FILE              write the XML here instead of stdout
${POD_TARGET_USAGE}

Exit status: 0 done; 2 bad flags/input or a plan with errors; 3 the pod or the libvirt version cannot run the
VMI (one line per interface); 1 internal or libvirt error.
`;

/** The pod identities setup recorded (the pod NIC as CNI left it), so a plumbed pod plans as before. */
export function recordedIdentities(stateRoot: string, vmi: unknown): Record<string, PodIdentity> {
  // domain runs on the launcher side (uid 107): it reads the launcher copy root wrote, serve.json.
  const state = readLauncherView(new StateDir(stateRoot, vmiKey(vmi)).dir);
  const out: Record<string, PodIdentity> = {};
  for (const [name, network] of Object.entries(state?.networks ?? {})) if (network.podIdentity) out[name] = network.podIdentity;
  return out;
}

/** Discovers the pod in the target namespace (entering it for the rest of the process). */
export async function discoverPod(values: PodTargetValues): Promise<PodState> {
  const { target, discover } = podTargetFromFlags(values);
  if (target) enterNetns(target);
  const driver = createNetlinkDriver();
  try {
    return await discoverPodState(driver, discover);
  } finally {
    driver.close();
  }
}

export function parseVersionFlag(text: string): LibvirtVersion {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!m) throw new InputError('--libvirt-version', `expected MAJOR.MINOR[.MICRO], got ${JSON.stringify(text)}`);
  return { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3] ?? 0) };
}

/** Refuses, in one line per interface, what this libvirt cannot run (exit 3). */
export function assertSupported(plan: Plan, version: LibvirtVersion): void {
  assertInterfacesSupported(plan.domain.interfaces, version);
}

function assertInterfacesSupported(interfacesXml: readonly string[], version: LibvirtVersion): void {
  const problems = unsupportedDevices(interfacesXml, version);
  if (problems.length > 0) throw new PlanError('libvirt', problems.join('; '));
}

const PASST_FORMS = ['vhostuser', 'user', 'stream', 'auto'] as const;

/** The passt attachment for --passt-form (auto: by the libvirt version). */
function passtFormFor(flag: (typeof PASST_FORMS)[number], version: LibvirtVersion | undefined): PasstAttachment {
  if (flag === 'stream') return 'agent-stream';
  if (flag !== 'auto') return flag;
  if (version === undefined) throw new InputError('--passt-form', 'auto needs the libvirt version: give --define URI or --libvirt-version X.Y');
  return passtAttachmentFor(version);
}

/** The merged domain in the chosen passt form; only the agent's own interfaces (alias ua-*) are version-checked. */
function inPasstForm(merged: string, form: PasstAttachment, socket: string | undefined, version: LibvirtVersion | undefined): string {
  let out = merged;
  if (form === 'user') out = toUserPasst(merged);
  if (form === 'agent-stream') {
    if (socket === undefined) {
      throw new PlanError('libvirt', 'passt through -netdev stream needs the socket of "virt-net-agent passt": pass --passt-socket PATH');
    }
    out = attachPasstByStream(merged, socket);
  }
  if (version !== undefined) {
    assertInterfacesSupported(
      listDomainInterfaces(out).filter((i) => i.alias?.startsWith('ua-') === true).map((i) => i.xml),
      version,
    );
  }
  return out;
}

export function printPlanErrors(plan: Plan): boolean {
  for (const error of plan.errors) process.stderr.write(`virt-net-agent: ${new AgentError(error.field, error.message).oneLine()}\n`);
  return plan.errors.length > 0;
}

async function planFor(inputs: PlanInputs, pod: PodState, stateRoot: string, domainXml: string): Promise<Plan> {
  const { computePlan } = await import('../plan/plan.js');
  return computePlan({ ...inputs, pod, priorIdentities: recordedIdentities(stateRoot, inputs.vmi), domainXml });
}

async function run(args: readonly string[]): Promise<number> {
  const { values, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  rejectRepeatedFlags(tokens);
  const inPath = required(values.in, '--in', 'domain');
  if (values.pod !== undefined && (values.netns !== undefined || values.pid !== undefined)) {
    throw new InputError('--pod', 'give either --pod or --netns/--pid, not both');
  }
  if (values.define !== undefined && values['libvirt-version'] !== undefined) {
    throw new InputError('--libvirt-version', 'give either --define (reads the version) or --libvirt-version, not both');
  }
  const offlineVersion = values['libvirt-version'] !== undefined ? parseVersionFlag(values['libvirt-version']) : undefined;
  const passtFlag = oneOf(values['passt-form'], '--passt-form', PASST_FORMS) ?? 'vhostuser';
  if (values['passt-socket'] !== undefined && passtFlag !== 'stream' && passtFlag !== 'auto') {
    throw new InputError('--passt-socket', 'only used with --passt-form stream or auto');
  }
  const inputs = await readPlanInputs(values, 'domain');
  const baseXml = await readTextFile(inPath, '--in');
  const pod = values.pod !== undefined ? await readPodState(values.pod, '--pod') : await discoverPod(values);
  const plan = await planFor(inputs, pod, values['state-dir'] ?? DEFAULT_STATE_ROOT, baseXml);
  if (printPlanErrors(plan)) return 2;

  let merged: string;
  try {
    merged = mergeDevices(baseXml, plan.domain.interfaces, plan.domain.hostdevs, plan.domain.memoryBacking);
  } catch (err) {
    throw new InputError('--in', err instanceof Error ? err.message : String(err));
  }

  if (values.define !== undefined) {
    const client = await connectLibvirt(values.define);
    try {
      const version = await client.libVersion();
      merged = inPasstForm(merged, passtFormFor(passtFlag, version), values['passt-socket'], version);
      const domain = await client.defineXml(merged);
      process.stderr.write(`virt-net-agent: defined domain ${domain.name} on ${values.define}\n`);
    } finally {
      await client.close();
    }
  } else {
    merged = inPasstForm(merged, passtFormFor(passtFlag, offlineVersion), values['passt-socket'], offlineVersion);
  }
  if (values.out !== undefined) writeFileSync(values.out, merged);
  else process.stdout.write(`${merged}\n`);
  return 0;
}

export const domainCommand: Command = { usage: USAGE, run };

