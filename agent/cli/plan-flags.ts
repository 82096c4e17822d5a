// Flags shared by every command that plans: the VMI, the KubeVirt config, phase, arch, MAC policy and MY_POD_IP.
import { InputError } from '../plan/errors.js';
import { readDocument } from './input.js';
import { isIPv4Address, isIPv6Address } from '../plan/ip.js';
import type { Arch, Phase } from '../plan/plan-types.js';
import { parseKubeVirtConfig, parseVmiObject } from '../plan/vmi-shape.js';
import type { KubeVirtConfig, Vmi } from '../plan/vmi-types.js';

export const PHASES: readonly Phase[] = ['start', 'migration-target', 'hotplug', 'hotunplug'];
export const ARCHES: readonly Arch[] = ['amd64', 'arm64', 's390x'];
export const MAC_POLICIES = ['pod', 'stable'] as const;
export type MacPolicy = (typeof MAC_POLICIES)[number];

export const PLAN_INPUT_OPTIONS = {
  vmi: { type: 'string' },
  'kubevirt-config': { type: 'string' },
  phase: { type: 'string' },
  arch: { type: 'string' },
  'mac-policy': { type: 'string' },
  'spoof-protection': { type: 'boolean' },
} as const;

type PlanOption = typeof PLAN_INPUT_OPTIONS;
export type PlanInputValues = {
  readonly [K in keyof PlanOption]?: (PlanOption[K]['type'] extends 'boolean' ? boolean : string) | undefined;
};

/** Node's names for the architectures KubeVirt runs on. */
const NODE_ARCH: Readonly<Record<string, Arch>> = { x64: 'amd64', arm64: 'arm64', s390x: 's390x' };

export function oneOf<T extends string>(value: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new InputError(flag, `expected one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`);
  }
  return value as T;
}

export function required(value: string | undefined, flag: string, command: string): string {
  if (value === undefined) throw new InputError(flag, `is required (see: virt-net-agent help ${command})`);
  if (value === '') throw new InputError(flag, 'needs a file name (or - for stdin)');
  return value;
}

export function hostArch(): Arch {
  const arch = NODE_ARCH[process.arch];
  if (arch === undefined) {
    throw new InputError('--arch', `no default for this machine's architecture (${process.arch}); pass one of ${ARCHES.join(', ')}`);
  }
  return arch;
}

export function podIpFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const value = env['MY_POD_IP']?.trim();
  if (value === undefined || value === '') return undefined;
  if (!isIPv4Address(value) && !isIPv6Address(value)) throw new InputError('MY_POD_IP', `not an IP address: ${JSON.stringify(value)}`);
  return value;
}

/** parseArgs keeps the last of a repeated flag silently; a repeated input file is almost always a mistake. */
export function rejectRepeatedFlags(tokens: readonly { kind: string; name?: string }[]): void {
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option' || token.name === undefined) continue;
    if (seen.has(token.name)) throw new InputError(`--${token.name}`, 'given more than once');
    seen.add(token.name);
  }
}

/** Errors from the shape checks name a field inside the document; say which flag's document it is. */
export function withFlag<T>(flag: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof InputError && !err.field.startsWith('--')) throw new InputError(flag, err.oneLine());
    throw err;
  }
}

export interface PlanInputs {
  /** The VMI, parsed once here; every later stage takes this value without parsing it again. */
  readonly vmi: Vmi;
  readonly config: KubeVirtConfig;
  readonly phase: Phase;
  readonly arch: Arch;
  readonly myPodIp?: string;
  readonly macPolicy?: MacPolicy;
  /** --spoof-protection: guard every VMI's guests unless its annotation says "false". */
  readonly spoofProtection?: boolean;
}

/** Reads and checks the VMI and config files named by the flags (shape errors name the flag and the field). */
export async function readPlanInputs(values: PlanInputValues, command: string): Promise<PlanInputs> {
  const vmiPath = required(values.vmi, '--vmi', command);
  const phase = oneOf(values.phase, '--phase', PHASES) ?? 'start';
  const arch = oneOf(values.arch, '--arch', ARCHES) ?? hostArch();
  const macPolicy = oneOf(values['mac-policy'], '--mac-policy', MAC_POLICIES);
  const myPodIp = podIpFromEnv(process.env);
  const document = await readDocument(vmiPath, '--vmi');
  const vmi = withFlag('--vmi', () => parseVmiObject(document));
  let config: KubeVirtConfig = {};
  const configPath = values['kubevirt-config'];
  if (configPath !== undefined) {
    const configDocument = await readDocument(configPath, '--kubevirt-config');
    config = withFlag('--kubevirt-config', () => parseKubeVirtConfig(configDocument));
  }
  return {
    vmi,
    config,
    phase,
    arch,
    ...(myPodIp !== undefined ? { myPodIp } : {}),
    ...(macPolicy !== undefined ? { macPolicy } : {}),
    ...(values['spoof-protection'] === true ? { spoofProtection: true } : {}),
  };
}
