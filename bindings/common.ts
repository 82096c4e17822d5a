// Rules shared by the bindings: MAC resolution, model mapping, ROM/driver rules, queues, tap owner, pod IP order.
import { macFromSeed, normalizeMac } from '../agent/plan/mac.js';
import { ipFamily, isGlobalUnicast, stripPrefix } from '../agent/plan/ip.js';
import type { Arch } from '../agent/plan/plan-types.js';
import type { Vmi, VmiInterface } from '../agent/plan/vmi-types.js';
import type { DomainInterfaceSpec, PciAddress } from '../domain/interface-spec.js';
import type { BindingInput, PlanContext } from './binding.js';

export { normalizeMac };

/**
 * The opt-in "stable" MAC: a locally administered unicast MAC from sha256(namespace/vmi/network).
 * 46 random bits: the chance that two of n interfaces collide is about n²/2^47 (1e-6 at n = 16,000).
 */
export function stableMac(namespace: string, vmiName: string, networkName: string): string {
  const mac = macFromSeed(`${namespace}/${vmiName}/${networkName}`);
  // Never hand out the masquerade bridge's reserved MAC.
  return mac === '02:00:00:00:00:00' ? '02:00:00:00:00:01' : mac;
}

/**
 * The MAC the guest uses and the DHCP server expects, one value for both (KubeVirt #16696):
 * spec MAC > VMI status MAC > (stable policy) derived MAC > the pod interface's original MAC.
 */
export function resolveGuestMac(input: BindingInput, podMac: string | null): string | null {
  const specMac = input.iface.macAddress ? normalizeMac(input.iface.macAddress) : null;
  if (specMac) return specMac;
  const statusMac = input.statusEntry?.mac ? normalizeMac(input.statusEntry.mac) : null;
  if (statusMac) return statusMac;
  if (input.ctx.macPolicy === 'stable') {
    const meta = input.ctx.vmi.metadata;
    return stableMac(meta.namespace ?? 'default', meta.name ?? '', input.network.name);
  }
  return podMac ? normalizeMac(podMac) : null;
}

/** libvirt model for the interface (reference §8). */
export function domainModel(iface: VmiInterface, vmi: Vmi, arch: Arch): string {
  const model = iface.model ?? 'virtio';
  if (model !== 'virtio') return model;
  if (arch === 's390x') return 'virtio';
  return vmi.spec.domain?.devices?.useVirtioTransitional ? 'virtio-transitional' : 'virtio-non-transitional';
}

export function isVirtio(iface: VmiInterface): boolean {
  return (iface.model ?? 'virtio') === 'virtio';
}

export function hasLaunchSecurity(vmi: Vmi): boolean {
  const security = vmi.spec.domain?.launchSecurity;
  return security !== undefined && security !== null;
}

/** Multiqueue: sockets×cores×threads capped at 256, only for virtio with networkInterfaceMultiqueue. 0 = none. */
export function queueCount(vmi: Vmi, iface: VmiInterface, statusQueues: number | undefined, inDomain: boolean): number {
  if (!vmi.spec.domain?.devices?.networkInterfaceMultiqueue || !isVirtio(iface)) return 0;
  if (inDomain && statusQueues !== undefined && statusQueues > 0) return statusQueues;
  // KubeVirt's GetCPUTopology: an unset or zero count is 1.
  const cpu = vmi.spec.domain?.cpu ?? {};
  const vcpus = (cpu.sockets || 1) * (cpu.cores || 1) * (cpu.threads || 1);
  return Math.min(vcpus, 256);
}

/**
 * The user virt-launcher runs as: qemu (107), unless the VMI runs as root (status.runtimeUser == 0). Taps belong to it,
 * and the state dir is handed to it (serve runs in the launcher).
 */
export function launcherUser(vmi: Vmi): { uid: number; gid: number } {
  const id = vmi.status?.runtimeUser === 0 ? 0 : 107;
  return { uid: id, gid: id };
}

export const tapOwner = launcherUser;

export function parseGuestPci(pciAddress: string | undefined): PciAddress | undefined {
  if (!pciAddress) return undefined;
  const match = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/.exec(pciAddress);
  if (!match) return undefined;
  return { domain: `0x${match[1]}`, bus: `0x${match[2]}`, slot: `0x${match[3]}`, function: `0x${match[4]}` };
}

/** The tap-style `<interface type='ethernet'>` shared by bridge, masquerade and tap plugins. */
export function tapDomainInterface(
  input: BindingInput,
  targetDev: string,
  mac: string | null,
  mtu: number | undefined,
): DomainInterfaceSpec {
  const { iface, ctx, queues } = input;
  const vmi = ctx.vmi;
  const launchSecurity = hasLaunchSecurity(vmi);
  const virtio = isVirtio(iface);
  const driver =
    virtio && (queues > 0 || launchSecurity)
      ? { name: 'vhost' as const, ...(queues > 0 ? { queues } : {}), ...(launchSecurity ? { iommu: 'on' as const } : {}) }
      : undefined;
  const romSupported = ctx.arch !== 's390x';
  const romDisabled = romSupported && (iface.bootOrder === undefined || launchSecurity);
  const pci = parseGuestPci(iface.pciAddress);
  return {
    type: 'ethernet',
    alias: `ua-${input.network.name}`,
    ...(pci ? { pciAddress: pci } : {}),
    targetDev,
    model: domainModel(iface, vmi, ctx.arch),
    ...(mac ? { mac } : {}),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(iface.bootOrder !== undefined ? { bootOrder: iface.bootOrder } : {}),
    ...(iface.state === 'down' ? { linkState: 'down' as const } : {}),
    ...(driver ? { driver } : {}),
    ...(romDisabled ? { romEnabled: false as const } : {}),
    ...(iface.acpiIndex !== undefined && iface.acpiIndex > 0 ? { acpiIndex: iface.acpiIndex } : {}),
  };
}

/**
 * The pod cache's IPs of an interface (netpod storePodInterfaceData): the first global-unicast IPv4 and the first
 * global-unicast IPv6, ordered like virt-handler orders them: the family of MY_POD_IP first (IPv4 when unset).
 */
export function orderedPodIps(ipv4: readonly string[], ipv6: readonly string[], ctx: PlanContext): string[] {
  const v4 = ipv4.map(stripPrefix).filter((ip) => ipFamily(ip) === 4 && isGlobalUnicast(ip)).slice(0, 1);
  const v6 = ipv6.map(stripPrefix).filter((ip) => ipFamily(ip) === 6 && isGlobalUnicast(ip)).slice(0, 1);
  const ipv6First = ctx.myPodIp !== undefined && ipFamily(ctx.myPodIp) === 6;
  return ipv6First ? [...v6, ...v4] : [...v4, ...v6];
}

/** `ipAddress`/`ipAddresses` of a status entry from the pod cache IPs (nothing when the cache has none). */
export function statusIps(ips: readonly string[]): { ipAddress?: string; ipAddresses?: string[] } {
  const first = ips[0];
  return first === undefined ? {} : { ipAddress: first, ipAddresses: [...ips] };
}

export function linkStateOf(iface: VmiInterface): 'up' | 'down' {
  return iface.state === 'down' ? 'down' : 'up';
}

/** Option 12: the launcher's hostname (spec.hostname, else the VMI name up to its first dot, max 63). */
export function guestHostname(ctx: PlanContext): string {
  if (ctx.pod.hostname) return ctx.pod.hostname;
  const name = ctx.vmi.spec.hostname ?? (ctx.vmi.metadata.name ?? '').split('.')[0] ?? '';
  return name.slice(0, 63);
}

/** The first global-unicast IPv4 of an address list, as CIDR. */
export function firstGlobalIpv4(ipv4: readonly string[]): string | undefined {
  return ipv4.find((cidr) => isGlobalUnicast(stripPrefix(cidr)));
}

/** Non-link-local addresses (what the identity keeper holds and teardown restores). */
export function globalAddresses(addresses: readonly string[]): string[] {
  return addresses.filter((cidr) => isGlobalUnicast(stripPrefix(cidr)));
}
