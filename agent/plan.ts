// The pure planner: (VMI, pod state, KubeVirt config, phase) → the whole network plan. Never touches the kernel.
import type { PodState } from './pod-state.js';
import type { Arch, Phase, Plan } from './plan-types.js';
import type { KubeVirtConfig } from './vmi-types.js';

export interface PlanInput {
  /** The VMI object as parsed from YAML/JSON (shape is checked here). */
  readonly vmi: unknown;
  readonly pod: PodState;
  readonly config: KubeVirtConfig;
  readonly phase: Phase;
  readonly arch: Arch;
  readonly myPodIp?: string;
  /** The running domain XML (hotplug/hotunplug planning). */
  readonly domainXml?: string;
  readonly macPolicy?: 'pod' | 'stable';
}

export function computePlan(input: PlanInput): Plan {
  void input;
  throw new Error('computePlan: not implemented yet');
}
