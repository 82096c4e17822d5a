// The one small interface every binding implements: (network, interface, pod state, context) → its slice of the plan.
import type { Arch, BindingKind, DhcpV4Plan, DhcpV6Plan, InterfaceStatus, LinkStep, Phase, PodIdentity } from '../agent/plan/plan-types.js';
import type { PodInterface, PodState } from '../agent/plan/pod-state.js';
import type { KubeVirtConfig, Vmi, VmiInterface, VmiNetwork } from '../agent/plan/vmi-types.js';
import type { DomainInterfaceSpec, HostdevSpec } from '../domain/interface-spec.js';

export interface PlanContext {
  readonly vmi: Vmi;
  readonly pod: PodState;
  readonly config: KubeVirtConfig;
  readonly phase: Phase;
  readonly arch: Arch;
  /** The env MY_POD_IP of virt-handler: orders dual-stack addresses (IPv4 first if it is IPv4). */
  readonly myPodIp: string | undefined;
  /** Opt-in MAC policy: "stable" derives a MAC when spec and status have none. */
  readonly macPolicy: 'pod' | 'stable';
  /** Non-fatal problems are pushed here (e.g. an invalid search domain dropped). */
  readonly warnings: string[];
}

export interface BindingInput {
  readonly network: VmiNetwork;
  readonly iface: VmiInterface;
  /** Index of the interface in spec.domain.devices.interfaces (fake bridge IP, DHCP). */
  readonly interfaceIndex: number;
  /** Pod interface name from the naming scheme (eth0, pod<hash>, netN). */
  readonly podInterfaceName: string;
  /** The pod link of that name, if it exists (after plumbing: the identity keeper). */
  readonly podInterface: PodInterface | undefined;
  /** The pod interface's original identity: from a prior setup's state dir, else from the pod link. */
  readonly podIdentity: PodIdentity | undefined;
  /** Is the pod NIC already plumbed (renamed to <x>-nic)? Then its current name. */
  readonly renamedNic: PodInterface | undefined;
  /** The network's index in spec.networks (field paths). */
  readonly networkIndex: number;
  readonly isPrimary: boolean;
  /** Is the interface in the running domain (from --domain or status infoSource)? */
  readonly inDomain: boolean;
  /** VMI status entry for this network, if any. */
  readonly statusEntry: { readonly mac?: string; readonly queueCount?: number; readonly infoSource?: string; readonly podInterfaceName?: string } | undefined;
  /** Queues for tap and driver (0 = no multiqueue). */
  readonly queues: number;
  readonly ctx: PlanContext;
}

/** Inputs to the masquerade nftables ruleset (rendered by bindings/masquerade-nft.ts). */
export interface MasqueradeNftInput {
  readonly podInterface: string;
  readonly bridge: string;
  readonly ipv4: { readonly guest: string; readonly gateway: string; readonly podIp: string | null } | null;
  readonly ipv6: { readonly guest: string; readonly gateway: string } | null;
  readonly ports: readonly { readonly protocol: 'tcp' | 'udp'; readonly port: number }[];
  readonly portRanges: readonly { readonly protocol: 'tcp' | 'udp'; readonly start: number; readonly end: number }[];
  readonly istio: boolean;
  /** Skip 49152/49153 from loopback (status.migrationTransport != "Unix"). */
  readonly legacyMigrationPorts: boolean;
}

export interface BindingSlice {
  readonly binding: BindingKind;
  readonly plugin?: { readonly name: string; readonly domainAttachmentType: string | null };
  readonly podInterface: string | null;
  readonly bridge: string | null;
  readonly tap: string | null;
  readonly guestMac: string | null;
  readonly podIdentity: PodIdentity | null;
  readonly links: readonly LinkStep[];
  readonly sysctls: Readonly<Record<string, string>>;
  /** Pod-wide sysctls (merged across networks). */
  readonly podSysctls: Readonly<Record<string, string>>;
  readonly dhcp: DhcpV4Plan | null;
  readonly dhcpv6: DhcpV6Plan | null;
  readonly nft: MasqueradeNftInput | null;
  readonly domainInterface: DomainInterfaceSpec | null;
  readonly hostdev: HostdevSpec | null;
  /** passt needs shared memfd memory backing. */
  readonly needsSharedMemory: boolean;
  readonly status: InterfaceStatus;
}

export interface Binding {
  readonly kind: BindingKind;
  plan(input: BindingInput): BindingSlice;
}
