// OnDefineDomain's work: (VMI JSON, domain XML) → the domain XML with this agent's interfaces, hostdevs and memory backing merged in.
import { AgentError, InputError } from '../plan/errors.js';
import type { PodState } from '../plan/pod-state.js';
import type { Arch, Plan } from '../plan/plan-types.js';
import { isMigrationTargetPod, pluginInterfacesAsMasquerade } from '../plan/binding-plugin.js';
import { computePlan } from '../plan/plan.js';
import { parseVmiObject } from '../plan/vmi-shape.js';
import type { KubeVirtConfig, Vmi } from '../plan/vmi-types.js';
import { mergeDevices } from '../../domain/domain-xml.js';
import { attachPasstByStream } from '../passt/domain-form.js';

export interface DefineDomainContext {
  /** The pod state to plan against: a fixed file, or discovered from the netns at each call. */
  readonly pod: () => Promise<PodState>;
  readonly config: KubeVirtConfig;
  readonly arch: Arch;
  readonly myPodIp?: string;
  readonly macPolicy?: 'pod' | 'stable';
  /** Agent-managed passt (libvirt < 11.1): attach the passt interface to this socket with qemu's -netdev stream. */
  readonly passtSocket?: string;
  /**
   * The network binding plugin this sidecar serves (KubeVirt's NETWORK_BINDING_PLUGIN_NAME): only the interfaces with
   * `binding: {name: <it>}` are planned, as masquerade (what the binding-plugin CNI plumbed); a VMI without one is
   * returned unchanged.
   */
  readonly bindingPlugin?: string;
  /** This pod's name (its hostname): on the target pod of a migration the plan's phase is migration-target. */
  readonly podName?: string;
}

/** The merged domain and the plan it came from (null: nothing of ours in the VMI, the domain is unchanged). */
export interface DefinedDomain {
  readonly xml: string;
  readonly plan: Plan | null;
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').trim();
}

/** Parses the VMI bytes; errors name the field inside the VMI as `vmi.<path>`. */
export function parseVmiBytes(bytes: Buffer): Vmi {
  return checkVmi(parseVmiJson(bytes));
}

function parseVmiJson(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  if (text.trim() === '') throw new InputError('vmi', 'is empty (expected the VirtualMachineInstance as JSON)');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw new InputError('vmi', `invalid JSON: ${firstLine(err instanceof Error ? err.message : String(err))}`);
  }
  return value;
}

function checkVmi(value: unknown): Vmi {
  try {
    return parseVmiObject(value);
  } catch (err) {
    if (err instanceof AgentError) throw new InputError(`vmi.${err.field}`, err.message);
    throw err;
  }
}

/**
 * Plans the VMI against the pod (phase start) and merges the planned devices into the domain XML, keeping every
 * other element. Throws InputError (field `vmi…` or `domainXML`) for bad input, PlanError when the pod cannot
 * satisfy the VMI.
 */
export async function defineDomain(domainXml: Buffer, vmiBytes: Buffer, ctx: DefineDomainContext): Promise<string> {
  return (await defineDomainWithPlan(domainXml, vmiBytes, ctx)).xml;
}

export async function defineDomainWithPlan(domainXml: Buffer, vmiBytes: Buffer, ctx: DefineDomainContext): Promise<DefinedDomain> {
  let raw = parseVmiJson(vmiBytes);
  const xml = domainXml.toString('utf8');
  if (xml.trim() === '') throw new InputError('domainXML', 'is empty');
  let phase: 'start' | 'migration-target' = 'start';
  if (ctx.bindingPlugin !== undefined) {
    const ours = pluginInterfacesAsMasquerade(raw, ctx.bindingPlugin);
    if (ours === null) return { xml, plan: null };
    raw = ours;
    if (isMigrationTargetPod(raw, ctx.podName)) phase = 'migration-target';
  }
  const vmi = checkVmi(raw);
  const pod = await ctx.pod();
  const plan = computePlan({
    vmi,
    pod,
    config: ctx.config,
    phase,
    arch: ctx.arch,
    ...(ctx.myPodIp !== undefined ? { myPodIp: ctx.myPodIp } : {}),
    ...(ctx.macPolicy !== undefined ? { macPolicy: ctx.macPolicy } : {}),
  });
  const error = plan.errors[0];
  if (error !== undefined) {
    const more = plan.errors.length > 1 ? ` (and ${plan.errors.length - 1} more)` : '';
    throw new InputError(`vmi.${error.field}`, `${error.message}${more}`);
  }
  let merged: string;
  try {
    merged = mergeDevices(xml, plan.domain.interfaces, plan.domain.hostdevs, plan.domain.memoryBacking);
  } catch (err) {
    const message = firstLine(err instanceof Error ? err.message : String(err)).replace(/^domain XML:\s*/, '');
    throw new InputError('domainXML', message);
  }
  return { xml: ctx.passtSocket !== undefined ? attachPasstByStream(merged, ctx.passtSocket) : merged, plan };
}
