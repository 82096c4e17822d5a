// The subset of KubeVirt's VirtualMachineInstance and KubeVirt CR configuration that networking reads.

export interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface PodNetworkSource {
  readonly vmNetworkCIDR?: string;
  readonly vmIPv6NetworkCIDR?: string;
}

export interface MultusNetworkSource {
  readonly networkName?: string;
  readonly default?: boolean;
}

export interface ResourceClaimNetworkSource {
  readonly claimName?: string;
  readonly requestName?: string;
}

export interface VmiNetwork {
  readonly name: string;
  readonly pod?: PodNetworkSource;
  readonly multus?: MultusNetworkSource;
  readonly resourceClaim?: ResourceClaimNetworkSource;
}

export interface VmiPort {
  readonly name?: string;
  readonly protocol?: string;
  readonly port?: number;
}

export interface VmiPortRange {
  readonly protocol?: string;
  readonly start?: number;
  readonly end?: number;
}

export interface DhcpPrivateOption {
  readonly option: number;
  readonly value: string;
}

export interface DhcpOptions {
  readonly bootFileName?: string;
  readonly tftpServerName?: string;
  readonly ntpServers?: readonly string[];
  readonly privateOptions?: readonly DhcpPrivateOption[];
}

/** Binding keys as they appear in `spec.domain.devices.interfaces[]` (each an empty object when used). */
export interface VmiInterface {
  readonly name: string;
  readonly bridge?: Record<string, never> | object;
  readonly masquerade?: object;
  readonly sriov?: object;
  readonly passtBinding?: object;
  readonly slirp?: object;
  readonly macvtap?: object;
  readonly passt?: object;
  readonly binding?: { readonly name?: string };
  readonly model?: string;
  readonly macAddress?: string;
  readonly ports?: readonly VmiPort[];
  readonly portRanges?: readonly VmiPortRange[];
  readonly bootOrder?: number;
  readonly pciAddress?: string;
  readonly dhcpOptions?: DhcpOptions;
  readonly tag?: string;
  readonly acpiIndex?: number;
  readonly state?: string;
}

export interface VmiDisk {
  readonly name: string;
  readonly bootOrder?: number;
}

export interface CpuTopology {
  readonly sockets?: number;
  readonly cores?: number;
  readonly threads?: number;
}

export interface VmiDevices {
  readonly interfaces?: readonly VmiInterface[];
  readonly disks?: readonly VmiDisk[];
  readonly autoattachPodInterface?: boolean;
  readonly networkInterfaceMultiqueue?: boolean;
  readonly useVirtioTransitional?: boolean;
}

export interface LaunchSecurity {
  readonly sev?: object;
  readonly snp?: object;
  readonly tdx?: object;
}

export interface VmiDomainSpec {
  readonly devices?: VmiDevices;
  readonly cpu?: CpuTopology;
  readonly launchSecurity?: LaunchSecurity;
}

export interface VmiSpec {
  readonly domain?: VmiDomainSpec;
  readonly networks?: readonly VmiNetwork[];
  readonly hostname?: string;
  readonly subdomain?: string;
}

export interface VmiInterfaceStatus {
  readonly name?: string;
  readonly mac?: string;
  readonly podInterfaceName?: string;
  readonly infoSource?: string;
  readonly queueCount?: number;
  readonly linkState?: string;
  readonly ipAddress?: string;
  readonly ipAddresses?: readonly string[];
  readonly interfaceName?: string;
}

export interface VmiStatus {
  readonly interfaces?: readonly VmiInterfaceStatus[];
  readonly migrationTransport?: string;
  readonly runtimeUser?: number;
}

export interface Vmi {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: ObjectMeta;
  readonly spec: VmiSpec;
  readonly status?: VmiStatus;
}

/** `spec.configuration.network.binding.<name>` of the KubeVirt CR. */
export interface InterfaceBindingPlugin {
  readonly sidecarImage?: string;
  readonly networkAttachmentDefinition?: string;
  readonly domainAttachmentType?: string;
  readonly migration?: { readonly method?: string };
  readonly downwardAPI?: string;
}

/** The KubeVirt CR's `spec.configuration`. */
export interface KubeVirtConfig {
  readonly developerConfiguration?: { readonly featureGates?: readonly string[] };
  readonly network?: {
    readonly permitBridgeInterfaceOnPodNetwork?: boolean;
    readonly defaultNetworkInterface?: string;
    readonly binding?: Readonly<Record<string, InterfaceBindingPlugin>>;
  };
}
