// Masquerade binding: a NAT gateway bridge (pinned MAC) with the guest on a private CIDR and an nftables ruleset.
import { PlanError } from '../agent/plan/errors.js';
import { addressCount, cidrAddress, formatCidr, nthHost, parseCidr, stripPrefix, type Cidr, type Family } from '../agent/plan/ip.js';
import { MASQUERADE_BRIDGE_MAC, bridgeName, tapName } from '../agent/plan/names.js';
import type { LinkStep, PodIdentity } from '../agent/plan/plan-types.js';
import type { Binding, BindingInput, BindingSlice, MasqueradeNftInput } from './binding.js';
import { requireIdentity } from './bridge.js';
import {
  firstGlobalIpv4,
  globalAddresses,
  guestHostname,
  linkStateOf,
  orderedPodIps,
  resolveGuestMac,
  statusIps,
  tapDomainInterface,
  tapOwner,
} from './common.js';
import { buildDhcpV4Plan, buildDhcpV6Plan } from './dhcp-config.js';

export const DEFAULT_VM_CIDR = '10.0.2.0/24';
export const DEFAULT_VM_IPV6_CIDR = 'fd10:0:2::/120';

interface VmSubnet {
  readonly gateway: Cidr;
  readonly guest: Cidr;
}

/** Gateway = first host, guest = second host; fewer than 4 addresses cannot hold both (KubeVirt's message). */
function vmSubnet(text: string, family: Family, field: string): VmSubnet {
  const cidr = parseCidr(text);
  if (!cidr || cidr.family !== family) {
    throw new PlanError(field, `failed to parse VM CIDR: ${text}: not an ${family === 4 ? 'IPv4' : 'IPv6'} CIDR`);
  }
  if (addressCount(cidr) < 4n) {
    throw new PlanError(field, `VM CIDR subnet is too small, at least 2 host addresses are required: ${text}`);
  }
  return { gateway: nthHost(cidr, 1), guest: nthHost(cidr, 2) };
}

/**
 * The pod starts out knowing the guest's MAC for its addresses (a REACHABLE entry, as if the guest had just answered
 * an ARP): on a migration target the first packets after the switchover then reach the guest without an ARP/NDP round
 * trip through a guest that has just resumed (median 38 → 19 ms here; docs/migration.md). The kernel re-verifies the
 * entry like any it learned, so a guest that changes its MAC is found again. Not KubeVirt's (it lets the kernel ARP).
 */
function guestNeighbours(guestMac: string | null, v4: VmSubnet | null, v6: VmSubnet | null): { neighbours?: LinkStep['neighbours'] } {
  if (guestMac === null || (!v4 && !v6)) return {};
  return {
    neighbours: [...(v4 ? [{ ip: cidrAddress(v4.guest), mac: guestMac }] : []), ...(v6 ? [{ ip: cidrAddress(v6.guest), mac: guestMac }] : [])],
  };
}

const ISTIO_INJECT_ANNOTATION = 'sidecar.istio.io/inject';

function portRangesEnabled(ctx: BindingInput['ctx']): boolean {
  return ctx.config.developerConfiguration?.featureGates?.includes('PortRangesSpec') ?? false;
}

function nftInput(input: BindingInput, identity: PodIdentity, v4: VmSubnet | null, v6: VmSubnet | null): MasqueradeNftInput {
  const { iface, ctx } = input;
  const protocolOf = (protocol: string | undefined): 'tcp' | 'udp' => (protocol?.toLowerCase() === 'udp' ? 'udp' : 'tcp');
  const podIpv4 = firstGlobalIpv4(identity.ipv4);
  return {
    podInterface: input.podInterfaceName,
    bridge: bridgeName(input.podInterfaceName),
    ipv4: v4 ? { guest: cidrAddress(v4.guest), gateway: cidrAddress(v4.gateway), podIp: podIpv4 ? stripPrefix(podIpv4) : null } : null,
    ipv6: v6 ? { guest: cidrAddress(v6.guest), gateway: cidrAddress(v6.gateway) } : null,
    ports: (iface.ports ?? []).map((port) => ({ protocol: protocolOf(port.protocol), port: port.port ?? 0 })),
    // KubeVirt ignores portRanges unless the PortRangesSpec gate is on (admission rejects them anyway).
    portRanges: (portRangesEnabled(ctx) ? (iface.portRanges ?? []) : []).map((range) => ({
      protocol: protocolOf(range.protocol),
      start: range.start ?? 0,
      end: range.end ?? 0,
    })),
    istio: ctx.vmi.metadata.annotations?.[ISTIO_INJECT_ANNOTATION]?.toLowerCase() === 'true',
    legacyMigrationPorts: ctx.vmi.status?.migrationTransport !== 'Unix',
  };
}

export const masqueradeBinding: Binding = {
  kind: 'masquerade',
  plan(input: BindingInput): BindingSlice {
    const identity = requireIdentity(input);
    const { ctx, iface } = input;
    const podIface = input.podInterfaceName;
    const bridge = bridgeName(podIface);
    const tap = tapName(podIface, input.isPrimary);
    const source = input.network.pod ?? {};
    const fieldBase = `spec.networks[${input.networkIndex}].pod`;
    const hasIpv4 = firstGlobalIpv4(identity.ipv4) !== undefined;
    const hasIpv6 = globalAddresses(identity.ipv6).length > 0;
    const v4 = hasIpv4 ? vmSubnet(source.vmNetworkCIDR ?? DEFAULT_VM_CIDR, 4, `${fieldBase}.vmNetworkCIDR`) : null;
    const v6 = hasIpv6 ? vmSubnet(source.vmIPv6NetworkCIDR ?? DEFAULT_VM_IPV6_CIDR, 6, `${fieldBase}.vmIPv6NetworkCIDR`) : null;
    const guestMac = resolveGuestMac(input, identity.mac);
    const hostname = guestHostname(ctx);

    const dhcp = v4
      ? buildDhcpV4Plan({
          interface: bridge,
          serverIdentifier: cidrAddress(v4.gateway),
          clientMac: null,
          address: formatCidr(v4.guest),
          gateway: cidrAddress(v4.gateway),
          routes: null,
          mtu: identity.mtu,
          resolvConf: ctx.pod.resolvConf,
          hostname,
          ...(ctx.vmi.spec.subdomain ? { subdomain: ctx.vmi.spec.subdomain } : {}),
          ...(iface.dhcpOptions ? { dhcpOptions: iface.dhcpOptions } : {}),
          warnings: ctx.warnings,
        })
      : null;
    const dhcpv6 = v6
      ? buildDhcpV6Plan({
          interface: bridge,
          bridgeMac: MASQUERADE_BRIDGE_MAC,
          clientMac: null,
          address: formatCidr(v6.guest),
          gateway: cidrAddress(v6.gateway),
          resolvConf: ctx.pod.resolvConf,
          mtu: identity.mtu,
          routerAdvertisements: true,
          ...(ctx.vmi.spec.subdomain ? { subdomain: ctx.vmi.spec.subdomain } : {}),
        })
      : null;

    const podSysctls: Record<string, string> = {};
    if (v4) podSysctls['net.ipv4.ip_forward'] = '1';
    if (v6) podSysctls['net.ipv6.conf.all.forwarding'] = '1';
    const podIps = orderedPodIps(identity.ipv4, identity.ipv6, ctx);
    return {
      binding: 'masquerade',
      podInterface: podIface,
      bridge,
      tap,
      guestMac,
      podIdentity: identity,
      links: [
        {
          op: 'create',
          kind: 'bridge',
          name: bridge,
          mac: MASQUERADE_BRIDGE_MAC,
          mtu: identity.mtu,
          addresses: [...(v4 ? [formatCidr(v4.gateway)] : []), ...(v6 ? [formatCidr(v6.gateway)] : [])],
          up: true,
          ...guestNeighbours(guestMac, v4, v6),
        },
        {
          op: 'create',
          kind: 'tap',
          name: tap,
          master: bridge,
          mtu: identity.mtu,
          queues: input.queues,
          owner: tapOwner(ctx.vmi),
          up: true,
        },
      ],
      sysctls: v4 ? { [`net.ipv4.conf.${bridge}.route_localnet`]: '1' } : {},
      podSysctls,
      dhcp,
      dhcpv6,
      nft: v4 || v6 ? nftInput(input, identity, v4, v6) : null,
      domainInterface: tapDomainInterface(input, tap, guestMac, identity.mtu),
      hostdev: null,
      needsSharedMemory: false,
      status: {
        name: input.network.name,
        ...(guestMac ? { mac: guestMac } : {}),
        podInterfaceName: podIface,
        infoSource: 'domain',
        queueCount: Math.max(input.queues, 1),
        linkState: linkStateOf(iface),
        ...statusIps(podIps),
      },
    };
  },
};
