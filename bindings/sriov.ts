// SR-IOV: no pod plumbing; a `<hostdev>` for the VF whose host PCI address comes from network-info or network-status.
import { PlanError } from '../agent/plan/errors.js';
import type { PodState } from '../agent/plan/pod-state.js';
import type { PciAddress } from '../domain/interface-spec.js';
import type { Binding, BindingInput, BindingSlice } from './binding.js';
import { normalizeMac, parseGuestPci } from './common.js';

export const SRIOV_ALIAS_PREFIX = 'sriov-';

/** Host PCI address of the VF: the downward-API network-info first, then Multus network-status device-info. */
export function sriovHostPciAddress(pod: PodState, networkName: string, podInterfaceName: string): string | undefined {
  const fromInfo = pod.networkInfo?.interfaces?.find((entry) => entry.network === networkName)?.deviceInfo?.pci?.['pci-address'];
  if (fromInfo) return fromInfo;
  return pod.networkStatus?.find((entry) => entry.interface === podInterfaceName)?.['device-info']?.pci?.['pci-address'];
}

function hostPci(address: string, field: string): PciAddress {
  const pci = parseGuestPci(address);
  if (!pci) throw new PlanError(field, `malformed PCI address "${address}"`);
  return pci;
}

export const sriovBinding: Binding = {
  kind: 'sriov',
  plan(input: BindingInput): BindingSlice {
    const { iface, ctx } = input;
    const address = sriovHostPciAddress(ctx.pod, input.network.name, input.podInterfaceName);
    if (!address) {
      throw new PlanError(
        'pod.networkInfo',
        `no PCI address for SR-IOV network "${input.network.name}" in network-info or network-status (interface ${input.podInterfaceName})`,
      );
    }
    const guestPci = parseGuestPci(iface.pciAddress);
    const specMac = iface.macAddress ? normalizeMac(iface.macAddress) : null;
    return {
      binding: 'sriov',
      podInterface: input.podInterfaceName,
      bridge: null,
      tap: null,
      guestMac: specMac,
      podIdentity: null,
      links: [],
      sysctls: {},
      podSysctls: {},
      dhcp: null,
      dhcpv6: null,
      nft: null,
      domainInterface: null,
      hostdev: {
        alias: `ua-${SRIOV_ALIAS_PREFIX}${input.network.name}`,
        source: hostPci(address, 'pod.networkInfo'),
        ...(guestPci ? { guestPciAddress: guestPci } : {}),
        ...(iface.bootOrder !== undefined ? { bootOrder: iface.bootOrder } : {}),
      },
      needsSharedMemory: false,
      status: {
        name: input.network.name,
        ...(specMac ? { mac: specMac } : {}),
        podInterfaceName: input.podInterfaceName,
        infoSource: 'domain, multus-status',
      },
    };
  },
};
