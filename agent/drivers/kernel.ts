// The kernel as the apply step sees it: a small interface over rtnetlink, tun ioctls, /proc/sys and nft.

export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  /** rtnetlink IFLA_INFO_KIND ("bridge", "veth", "tun", "dummy", "macvtap", …); "device" when absent. */
  readonly kind: string;
  readonly mac: string;
  readonly mtu: number;
  /** Administrative state (IFF_UP). */
  readonly up: boolean;
  readonly masterIndex: number | null;
  /** Bridge-port learning (IFLA_BRPORT_LEARNING), when the link is a bridge port. */
  readonly learning: boolean | null;
  /** For tun/tap links: owner, group, multi-queue and persistence (IFLA_TUN_*), when the kernel reports them. */
  readonly tun: { readonly owner: number | null; readonly group: number | null; readonly multiQueue: boolean; readonly persist: boolean } | null;
}

export interface AddressInfo {
  readonly index: number;
  /** "10.244.1.5/24", "fd10:0:2::1/120". */
  readonly cidr: string;
  readonly family: 4 | 6;
  /** RT_SCOPE: "global", "link", "host". */
  readonly scope: 'global' | 'link' | 'host' | 'site' | 'nowhere';
}

export interface RouteInfo {
  readonly family: 4 | 6;
  /** "default" or a CIDR. */
  readonly dst: string;
  readonly index: number | null;
  readonly gw: string | null;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  readonly metric: number | null;
  readonly type: number;
}

/** An ARP (IPv4) or NDP (IPv6) neighbour entry. */
export interface NeighbourInfo {
  readonly index: number;
  readonly family: 4 | 6;
  readonly ip: string;
  /** Lower-case MAC, "" while unresolved. */
  readonly mac: string;
  /** NUD_PERMANENT: set by an administrator, never aged or re-resolved by the kernel. */
  readonly permanent: boolean;
  /** The kernel holds a MAC it sends to (NUD_VALID: reachable, stale, delay, probe, noarp, permanent). */
  readonly valid: boolean;
  /** NUD_REACHABLE: confirmed (or set) recently; used without re-verification until the reachable time runs out. */
  readonly reachable: boolean;
}

export interface TapOptions {
  readonly queues: number;
  readonly owner: { readonly uid: number; readonly gid: number };
  readonly mtu?: number;
}

export interface LinkChanges {
  readonly name?: string;
  readonly mac?: string;
  readonly mtu?: number;
  /** ifindex of the new master, or null to release. */
  readonly master?: number | null;
  readonly up?: boolean;
}

/** Every method that changes the kernel is a "write"; the apply step counts them. */
export interface KernelDriver {
  listLinks(): Promise<LinkInfo[]>;
  /** The ifindex of one link by name (RTM_GETLINK, no dump), or null when there is none. */
  linkIndex(name: string): Promise<number | null>;
  listAddresses(): Promise<AddressInfo[]>;
  listRoutes(): Promise<RouteInfo[]>;
  listNeighbours(): Promise<NeighbourInfo[]>;
  /** Which link kinds this kernel can create (the bridge binding falls back when "dummy" is missing). */
  supportsLinkKind(kind: 'dummy' | 'bridge'): Promise<boolean>;

  createBridge(name: string, mac?: string): Promise<void>;
  createDummy(name: string): Promise<void>;
  createTap(name: string, options: TapOptions): Promise<void>;
  setLink(index: number, changes: LinkChanges): Promise<void>;
  setBridgePortLearning(index: number, learning: boolean): Promise<void>;
  deleteLink(index: number): Promise<void>;
  /**
   * Deletes these links together. The kernel waits for an RCU grace period (tens of ms here) per unregister batch, so
   * one batch for a teardown's tap, bridge and keeper is much faster than one delete each.
   */
  deleteLinks(indices: readonly number[]): Promise<void>;
  addAddress(index: number, cidr: string): Promise<void>;
  deleteAddress(index: number, cidr: string): Promise<void>;
  addRoute(route: { readonly dst: string; readonly index: number; readonly gw?: string; readonly family: 4 | 6 }): Promise<void>;
  deleteRoute(route: RouteInfo): Promise<void>;
  /**
   * A neighbour entry ip → mac on the link in state REACHABLE, replacing any entry for that address: the kernel uses
   * it at once and later re-verifies and re-learns it as it does an entry it resolved (a guest may change its MAC).
   */
  setNeighbour(index: number, ip: string, mac: string): Promise<void>;

  readSysctl(name: string): string | null;
  writeSysctl(name: string, value: string): void;

  /** Applies an `nft -f` text as one transaction. */
  nftApply(rulesetText: string): Promise<void>;
  /** `nft list ruleset` text. */
  nftList(): Promise<string>;

  close(): void;
}
