// Which pod interface serves which VMI network: eth0 / the Multus default, hashed pod<sha>, or legacy netN.
import type { PodIdentity } from './plan-types.js';
import type { PodInterface, PodState } from './pod-state.js';
import type { Vmi, VmiNetwork } from './vmi-types.js';
import { PRIMARY_POD_INTERFACE, hashedPodInterfaceName, renamedPodNicName, usesOrdinalNames } from './names.js';

export interface PodInterfaceAssignment {
  readonly name: string;
  readonly isPrimary: boolean;
}

export function isPrimaryNetwork(network: VmiNetwork): boolean {
  return network.pod !== undefined || network.multus?.default === true;
}

/** Names per network (KubeVirt namescheme): status podInterfaceName wins, then hashed, then ordinal if in use. */
export function assignPodInterfaces(vmi: Vmi, pod: PodState): Map<string, PodInterfaceAssignment> {
  const assignments = new Map<string, PodInterfaceAssignment>();
  const podNames = pod.interfaces.map((link) => link.name);
  const ordinal = usesOrdinalNames(podNames);
  const statusName = (network: string): string | undefined =>
    vmi.status?.interfaces?.find((entry) => entry.name === network)?.podInterfaceName;
  let secondaryIndex = 0;
  for (const network of vmi.spec.networks ?? []) {
    if (isPrimaryNetwork(network)) {
      const multusDefault = pod.networkStatus?.find((entry) => entry.default === true)?.interface;
      assignments.set(network.name, {
        name: statusName(network.name) ?? multusDefault ?? PRIMARY_POD_INTERFACE,
        isPrimary: true,
      });
      continue;
    }
    if (!network.multus) continue;
    secondaryIndex++;
    const hashed = hashedPodInterfaceName(network.name);
    const ordinalName = `net${secondaryIndex}`;
    const fromStatus = statusName(network.name);
    let name = hashed;
    if (fromStatus) name = fromStatus;
    else if (!podNames.includes(hashed) && !podNames.includes(renamedPodNicName(hashed)) && ordinal) name = ordinalName;
    assignments.set(network.name, { name, isPrimary: false });
  }
  return assignments;
}

export function identityFromLink(link: PodInterface, pod: PodState): PodIdentity {
  return {
    name: link.name,
    mac: link.mac,
    mtu: link.mtu,
    ipv4: link.ipv4,
    ipv6: link.ipv6,
    routes: pod.routes
      .filter((route) => route.dev === link.name)
      .map((route) => ({ dst: route.dst, ...(route.gw ? { gw: route.gw } : {}) })),
  };
}
