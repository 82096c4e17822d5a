// Core passtBinding: no pod links, two sysctls, and a vhost-user interface with a passt backend and port forwards.
import { PlanError } from '../agent/plan/errors.js';
import type { PortForward } from '../domain/interface-spec.js';
import type { VmiInterface } from '../agent/plan/vmi-types.js';
import type { Binding, BindingInput, BindingSlice } from './binding.js';
import { domainModel, hasLaunchSecurity, isVirtio, normalizeMac, orderedPodIps, parseGuestPci, statusIps } from './common.js';

export const PASST_LOG_FILE = '/var/run/kubevirt/passt.log';
/** Envoy's reserved ports, never forwarded to the guest when Istio is injected. */
export const ISTIO_RESERVED_PORTS = [15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090] as const;

/** `<portForward>` elements: none listed → all tcp and udp; listed → one element per protocol (reference §5.1). */
export function passtPortForwards(iface: VmiInterface, istio: boolean): PortForward[] {
  const ports = iface.ports ?? [];
  const tcpExcludes = istio ? ISTIO_RESERVED_PORTS.map((port) => ({ start: port, exclude: true })) : [];
  if (ports.length === 0) {
    if (istio) return [{ proto: 'tcp', ranges: tcpExcludes }];
    return [
      { proto: 'tcp', ranges: [] },
      { proto: 'udp', ranges: [] },
    ];
  }
  const tcp = ports.filter((p) => (p.protocol ?? 'tcp').toLowerCase() !== 'udp').map((p) => ({ start: p.port ?? 0 }));
  const udp = ports.filter((p) => (p.protocol ?? '').toLowerCase() === 'udp').map((p) => ({ start: p.port ?? 0 }));
  const forwards: PortForward[] = [];
  if (tcp.length > 0 || tcpExcludes.length > 0) forwards.push({ proto: 'tcp', ranges: [...tcpExcludes, ...tcp] });
  if (udp.length > 0) forwards.push({ proto: 'udp', ranges: udp });
  return forwards;
}

export const passtBinding: Binding = {
  kind: 'passtBinding',
  plan(input: BindingInput): BindingSlice {
    const { iface, ctx } = input;
    if (!input.podInterface && !input.podIdentity) {
      throw new PlanError('pod.interfaces', `pod link (${input.podInterfaceName}) is missing`);
    }
    const identity = input.podIdentity;
    // KubeVirt reads the name from status.interfaces[].podInterfaceName and fails without it; the naming scheme
    // gives the same name, so we fall back to it instead of failing.
    const sourceDev = input.statusEntry?.podInterfaceName ?? input.podInterfaceName;
    const specMac = iface.macAddress ? normalizeMac(iface.macAddress) : null;
    const istio = ctx.vmi.metadata.annotations?.['sidecar.istio.io/inject']?.toLowerCase() === 'true';
    const pci = parseGuestPci(iface.pciAddress);
    const podIps = identity ? orderedPodIps(identity.ipv4, identity.ipv6, ctx) : [];
    // newVirtioDriver: vhost with the queue count, plus iommu='on' under SEV/SNP/TDX or s390x PV (as for taps).
    const launchSecurity = hasLaunchSecurity(ctx.vmi);
    const driver =
      isVirtio(iface) && (input.queues > 0 || launchSecurity)
        ? { name: 'vhost' as const, ...(input.queues > 0 ? { queues: input.queues } : {}), ...(launchSecurity ? { iommu: 'on' as const } : {}) }
        : undefined;
    return {
      binding: 'passtBinding',
      podInterface: input.podInterfaceName,
      bridge: null,
      tap: null,
      guestMac: specMac,
      podIdentity: identity ?? null,
      links: [],
      sysctls: {},
      podSysctls: { 'net.ipv4.ping_group_range': '107 107', 'net.ipv4.ip_unprivileged_port_start': '0' },
      dhcp: null,
      dhcpv6: null,
      nft: null,
      domainInterface: {
        type: 'vhostuser',
        alias: `ua-${input.network.name}`,
        ...(pci ? { pciAddress: pci } : {}),
        sourceDev,
        model: domainModel(iface, ctx.vmi, ctx.arch),
        ...(specMac ? { mac: specMac } : {}),
        ...(driver ? { driver } : {}),
        ...(iface.acpiIndex !== undefined && iface.acpiIndex > 0 ? { acpiIndex: iface.acpiIndex } : {}),
        backend: { type: 'passt', logFile: PASST_LOG_FILE },
        portForwards: passtPortForwards(iface, istio),
      },
      hostdev: null,
      // Shared memory on every arch; the planner leaves out the memfd source where it is unsupported (s390x).
      needsSharedMemory: true,
      status: {
        name: input.network.name,
        ...(specMac ? { mac: specMac } : {}),
        podInterfaceName: input.podInterfaceName,
        infoSource: 'domain',
        ...statusIps(podIps),
      },
    };
  },
};
