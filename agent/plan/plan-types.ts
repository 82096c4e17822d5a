// The network plan: the JSON contract between planning (pure), applying (drivers), serving (DHCP) and libvirt.

export type Phase = 'start' | 'migration-target' | 'hotplug' | 'hotunplug';
export type Arch = 'amd64' | 'arm64' | 's390x';
export type BindingKind = 'bridge' | 'masquerade' | 'passtBinding' | 'sriov' | 'plugin';

export interface FieldError {
  /** Field path, e.g. "spec.domain.devices.interfaces[0].macAddress". */
  readonly field: string;
  /** KubeVirt's own message text where one exists. */
  readonly message: string;
}

export type LinkOp = 'create' | 'modify' | 'delete';
export type LinkKind = 'bridge' | 'tap' | 'dummy' | 'pod-nic';

/** One step of the ordered desired link state. Absent fields are left as they are. */
export interface LinkStep {
  readonly op: LinkOp;
  readonly kind: LinkKind;
  /** The link's name at the moment the step runs. */
  readonly name: string;
  /** For pod-nic: the ifindex discovered, so a rename is robust. */
  readonly index?: number;
  readonly renameTo?: string;
  /** A MAC, or "copy-from:<link name>". */
  readonly mac?: string;
  readonly mtu?: number;
  /** The final set of addresses (CIDR); [] removes every address. */
  readonly addresses?: readonly string[];
  readonly master?: string;
  readonly up?: boolean;
  /** Bridge-port learning (pod NIC enslaved to the bridge). */
  readonly learning?: boolean;
  readonly queues?: number;
  readonly owner?: { readonly uid: number; readonly gid: number };
  /**
   * Neighbour (ARP/NDP) entries the link must hold once up, set REACHABLE: the masquerade bridge resolves the guest's
   * address to its MAC without asking the guest (see docs/migration.md: it spares the target pod an ARP round trip
   * through a guest that has just resumed), and the kernel still ages, re-verifies and re-learns the entry (a guest
   * that changes its MAC). An entry the kernel already resolves is left as it is; other entries are the kernel's.
   */
  readonly neighbours?: readonly NeighbourEntry[];
}

export interface NeighbourEntry {
  readonly ip: string;
  readonly mac: string;
}

export interface DhcpV4Plan {
  /** The bridge the server is bound to. */
  readonly interface: string;
  readonly serverIdentifier: string;
  /** Only this chaddr is answered; null answers any (masquerade). */
  readonly clientMac: string | null;
  readonly yiaddr: string;
  readonly prefixLength: number;
  readonly leaseSeconds: number;
  /** Decimal option code → hex of the exact wire payload. */
  readonly options: Readonly<Record<string, string>>;
}

export interface RouterAdvertisementPlan {
  /** Source (link-local) of the RA is derived from the bridge MAC. */
  readonly prefix: string;
  readonly routerLifetimeSeconds: number;
  readonly mtu: number;
  /** RFC 8106 RDNSS. */
  readonly dns: readonly string[];
  /** Managed flag: addresses come from DHCPv6. */
  readonly managed: boolean;
  readonly other: boolean;
}

export interface DhcpV6Plan {
  readonly interface: string;
  readonly serverDuid: string;
  readonly clientMac: string | null;
  readonly address: string;
  readonly prefixLength: number;
  readonly preferredLifetime: number;
  readonly validLifetime: number;
  readonly dns: readonly string[];
  /** Decimal option code → hex of the exact wire payload (server-wide options, e.g. 23 DNS). */
  readonly options: Readonly<Record<string, string>>;
  /** Router advertisements (beyond KubeVirt, which sends none). */
  readonly ra: RouterAdvertisementPlan | null;
}

/** The VMI `status.interfaces[]` entry the agent would report. */
export interface InterfaceStatus {
  readonly name: string;
  readonly mac?: string;
  readonly podInterfaceName?: string;
  readonly infoSource?: string;
  readonly queueCount?: number;
  readonly linkState?: string;
  readonly ipAddress?: string;
  readonly ipAddresses?: readonly string[];
}

/** The pod interface as CNI left it, before plumbing: what the identity keeper holds and teardown restores. */
export interface PodIdentity {
  readonly name: string;
  readonly mac: string;
  readonly mtu: number;
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  /** Routes whose device is this interface. */
  readonly routes: readonly { readonly dst: string; readonly gw?: string }[];
}

export interface NetworkPlan {
  readonly name: string;
  readonly binding: BindingKind;
  /** For plugin bindings: the plugin name and its domain attachment type. */
  readonly plugin?: { readonly name: string; readonly domainAttachmentType: string | null };
  /** The spec state of the interface: "up", "down" or "absent". */
  readonly state: 'up' | 'down' | 'absent';
  readonly podInterface: string | null;
  readonly bridge: string | null;
  readonly tap: string | null;
  readonly guestMac: string | null;
  /** The pod interface identity before plumbing (what teardown restores, what the keeper holds). */
  readonly podIdentity: PodIdentity | null;
  readonly links: readonly LinkStep[];
  readonly sysctls: Readonly<Record<string, string>>;
  readonly dhcp: DhcpV4Plan | null;
  readonly dhcpv6: DhcpV6Plan | null;
  readonly status: InterfaceStatus;
}

export type DomainOperationKind = 'attach' | 'detach' | 'update';

export interface DomainOperation {
  readonly op: DomainOperationKind;
  readonly network: string;
  /** libvirt flags, e.g. ["VIR_DOMAIN_AFFECT_LIVE", "VIR_DOMAIN_AFFECT_CONFIG"], and their numeric value. */
  readonly flags: readonly string[];
  readonly flagsValue: number;
  readonly xml: string;
}

export interface DomainPlan {
  readonly interfaces: readonly string[];
  readonly hostdevs: readonly string[];
  readonly memoryBacking: string | null;
  readonly operations: readonly DomainOperation[];
}

export interface Plan {
  readonly errors: readonly FieldError[];
  readonly vmi: { readonly name: string; readonly namespace: string; readonly uid: string } | null;
  readonly phase: Phase;
  readonly arch: Arch;
  readonly networks: readonly NetworkPlan[];
  /** Sysctls for the whole pod (e.g. net.ipv4.conf.all.arp_ignore), merged from all networks. */
  readonly sysctls: Readonly<Record<string, string>>;
  readonly nftables: string | null;
  readonly domain: DomainPlan;
  /** Non-fatal notes (e.g. an invalid search domain dropped). */
  readonly warnings: readonly string[];
}
