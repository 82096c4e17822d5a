// Bridge binding (and managedTap plugins): the pod NIC becomes a bridge port, the guest gets its identity through a tap.
import type { LinkStep, PodIdentity } from '../agent/plan/plan-types.js';
import type { PodState } from '../agent/plan/pod-state.js';
import { PlanError } from '../agent/plan/errors.js';
import { bridgeName, fakeBridgeIp, renamedPodNicName, tapName } from '../agent/plan/names.js';
import { bridgeDhcpAddressing, buildDhcpV4Plan } from './dhcp-config.js';
import type { Binding, BindingInput, BindingSlice } from './binding.js';
import {
  firstGlobalIpv4,
  guestHostname,
  linkStateOf,
  orderedPodIps,
  resolveGuestMac,
  statusIps,
  tapDomainInterface,
  tapOwner,
} from './common.js';

/** The pod state as it was before plumbing, seen through the identity (routes and addresses are gone after setup). */
function podStateFromIdentity(pod: PodState, identity: PodIdentity): PodState {
  return {
    ...pod,
    interfaces: [
      { name: identity.name, index: 0, kind: 'veth', mac: identity.mac, mtu: identity.mtu, up: true, ipv4: identity.ipv4, ipv6: identity.ipv6 },
    ],
    routes: identity.routes.map((route) => ({ ...route, dev: identity.name })),
  };
}

export function requireIdentity(input: BindingInput): PodIdentity {
  if (input.podIdentity) return input.podIdentity;
  throw new PlanError(
    'pod.interfaces',
    `pod link (${input.podInterfaceName}) is missing: it should carry network "${input.network.name}" (spec.networks[${input.networkIndex}])`,
  );
}

/**
 * The desired link state, in KubeVirt's order: bridge, pod NIC (renamed, bridge MAC, no addresses,
 * learning off), tap, then the identity keeper named like the original NIC.
 */
export function bridgeLinks(input: BindingInput, identity: PodIdentity, bridgeAddresses: string[]): LinkStep[] {
  const podIface = input.podInterfaceName;
  const bridge = bridgeName(podIface);
  const nicName = renamedPodNicName(podIface);
  const tap = tapName(podIface, input.isPrimary);
  const currentNic = input.renamedNic ?? input.podInterface;
  return [
    { op: 'create', kind: 'bridge', name: bridge, addresses: bridgeAddresses, up: true },
    {
      op: 'modify',
      kind: 'pod-nic',
      name: currentNic?.name ?? podIface,
      ...(currentNic ? { index: currentNic.index } : {}),
      ...(currentNic?.name !== nicName ? { renameTo: nicName } : {}),
      mac: `copy-from:${bridge}`,
      addresses: [],
      master: bridge,
      learning: false,
      up: true,
    },
    {
      op: 'create',
      kind: 'tap',
      name: tap,
      master: bridge,
      mtu: identity.mtu,
      queues: input.queues,
      owner: tapOwner(input.ctx.vmi),
      up: true,
    },
    {
      op: 'create',
      kind: 'dummy',
      name: podIface,
      mac: identity.mac,
      mtu: identity.mtu,
      // Every address the pod NIC had, link-local ones too (KubeVirt's dummy takes the NIC's IPv4 and IPv6 as read): on a
      // pod NIC without IPv4, its IPv6 link-local address is all that identifies it.
      addresses: [...identity.ipv4, ...identity.ipv6],
      up: false,
    },
  ];
}

export const bridgeBinding: Binding = {
  kind: 'bridge',
  plan(input: BindingInput): BindingSlice {
    const identity = requireIdentity(input);
    const podIface = input.podInterfaceName;
    const bridge = bridgeName(podIface);
    const tap = tapName(podIface, input.isPrimary);
    const podIpv4 = firstGlobalIpv4(identity.ipv4);
    const fakeIp = podIpv4 ? fakeBridgeIp(input.interfaceIndex) : null;
    const guestMac = resolveGuestMac(input, identity.mac);
    const ctx = input.ctx;

    const addressing = podIpv4 ? bridgeDhcpAddressing(podStateFromIdentity(ctx.pod, identity), identity.name) : null;
    const dhcp =
      addressing && fakeIp
        ? buildDhcpV4Plan({
            interface: bridge,
            serverIdentifier: fakeIp,
            clientMac: guestMac,
            address: addressing.ipv4,
            gateway: addressing.gateway,
            routes: addressing.routes,
            mtu: identity.mtu,
            resolvConf: ctx.pod.resolvConf,
            hostname: guestHostname(ctx),
            ...(ctx.vmi.spec.subdomain ? { subdomain: ctx.vmi.spec.subdomain } : {}),
            ...(input.iface.dhcpOptions ? { dhcpOptions: input.iface.dhcpOptions } : {}),
            warnings: ctx.warnings,
          })
        : null;

    // The pod cache (status IPs) keeps only the first global IPv4: the bridge binding serves no DHCPv6, so the pod's
    // IPv6 never reaches the guest, and KubeVirt drops it before storePodInterfaceData (netpod discover.go, 2026) so the
    // guest agent's IPv6, when there is one, is reported instead. An IPv6-only pod NIC reports no status IPs.
    const podIps = orderedPodIps(identity.ipv4, [], ctx);
    return {
      binding: 'bridge',
      podInterface: podIface,
      bridge,
      tap,
      guestMac,
      podIdentity: identity,
      links: bridgeLinks(input, identity, fakeIp ? [`${fakeIp}/32`] : []),
      sysctls: {},
      podSysctls: podIpv4 ? { 'net.ipv4.conf.all.arp_ignore': '1' } : {},
      dhcp,
      dhcpv6: null,
      nft: null,
      domainInterface: tapDomainInterface(input, tap, guestMac, identity.mtu),
      hostdev: null,
      needsSharedMemory: false,
      status: {
        name: input.network.name,
        ...(guestMac ? { mac: guestMac } : {}),
        podInterfaceName: podIface,
        infoSource: input.isPrimary ? 'domain' : 'domain, multus-status',
        queueCount: Math.max(input.queues, 1),
        linkState: linkStateOf(input.iface),
        ...statusIps(podIps),
      },
    };
  },
};
