// The observed pod network state: what `virt-net-agent discover` prints and `plan --pod` reads.

export interface PodInterface {
  readonly name: string;
  readonly index: number;
  /** Link kind as rtnetlink reports it: veth, bridge, tun, macvtap, macvlan, dummy, device, … */
  readonly kind: string;
  readonly mac: string;
  readonly mtu: number;
  readonly up: boolean;
  readonly master?: string;
  /** Addresses in CIDR form, e.g. "10.244.1.5/24". */
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
}

export interface PodRoute {
  /** "default", or a CIDR ("10.244.0.0/24", "::/0"). */
  readonly dst: string;
  readonly dev: string;
  readonly gw?: string;
}

/** One element of the Multus `k8s.v1.cni.cncf.io/network-status` annotation. */
export interface MultusNetworkStatus {
  readonly name: string;
  readonly interface?: string;
  readonly ips?: readonly string[];
  readonly mac?: string;
  readonly mtu?: number;
  readonly default?: boolean;
  readonly dns?: object;
  readonly 'device-info'?: DeviceInfo;
}

export interface DeviceInfo {
  readonly type: string;
  readonly version?: string;
  readonly pci?: { readonly 'pci-address'?: string; readonly 'pf-pci-address'?: string; readonly 'rdma-device'?: string };
}

/** `/etc/podinfo/network-info`: the `kubevirt.io/network-info` annotation. */
export interface NetworkInfo {
  readonly interfaces?: readonly { readonly network: string; readonly deviceInfo?: DeviceInfo; readonly mac?: string; readonly mtu?: number }[];
}

export interface PodState {
  readonly hostname: string;
  readonly interfaces: readonly PodInterface[];
  readonly routes: readonly PodRoute[];
  readonly resolvConf: string;
  readonly networkStatus?: readonly MultusNetworkStatus[];
  readonly networkInfo?: NetworkInfo;
}
