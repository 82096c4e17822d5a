// Plain descriptions of the libvirt devices a binding wants; domain/interface-xml.ts renders them with xmlbuilder2.

export interface PciAddress {
  /** Hex strings with 0x prefix as libvirt prints them: domain 0x0000, bus 0x81, slot 0x01, function 0x0. */
  readonly domain: string;
  readonly bus: string;
  readonly slot: string;
  readonly function: string;
}

export interface PortForwardRange {
  readonly start: number;
  readonly end?: number;
  readonly exclude?: boolean;
}

export interface PortForward {
  readonly proto: 'tcp' | 'udp';
  readonly ranges: readonly PortForwardRange[];
}

/** One `<interface>` element. Children are emitted in KubeVirt's order (reference §8). */
export interface DomainInterfaceSpec {
  readonly type: 'ethernet' | 'vhostuser' | 'user';
  /** `ua-<network name>`. */
  readonly alias: string;
  readonly pciAddress?: PciAddress;
  /** `<source dev=…>` (vhostuser); ethernet emits an empty `<source/>`. */
  readonly sourceDev?: string;
  /** `<target dev=… managed='no'/>`. */
  readonly targetDev?: string;
  readonly model: string;
  readonly mac?: string;
  readonly mtu?: number;
  readonly bootOrder?: number;
  readonly linkState?: 'down';
  readonly driver?: { readonly name?: 'vhost'; readonly queues?: number; readonly iommu?: 'on' };
  /** false → `<rom enabled='no'/>`; undefined → no `<rom>`. */
  readonly romEnabled?: false;
  readonly acpiIndex?: number;
  readonly backend?: { readonly type: 'passt'; readonly logFile?: string };
  readonly portForwards?: readonly PortForward[];
}

/** One SR-IOV `<hostdev type='pci' managed='no'>`. */
export interface HostdevSpec {
  readonly alias: string;
  readonly source: PciAddress;
  readonly guestPciAddress?: PciAddress;
  readonly bootOrder?: number;
}
