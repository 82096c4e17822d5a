// Network binding plugins: `tap` (e.g. macvtap: the pod interface itself is the target), `managedTap` (plumbed like
// bridge, no DHCP), or sidecar-only plugins (no interface from us).
import { PlanError } from '../agent/plan/errors.js';
import { bridgeName, tapName } from '../agent/plan/names.js';
import type { Binding, BindingInput, BindingSlice } from './binding.js';
import { bridgeLinks, requireIdentity } from './bridge.js';
import { firstGlobalIpv4, linkStateOf, normalizeMac, orderedPodIps, resolveGuestMac, statusIps, tapDomainInterface } from './common.js';

function pluginOf(input: BindingInput): { name: string; domainAttachmentType: string | null } {
  const name = input.iface.binding?.name ?? '';
  const registered = input.ctx.config.network?.binding?.[name];
  return { name, domainAttachmentType: registered?.domainAttachmentType ?? null };
}

export const pluginBinding: Binding = {
  kind: 'plugin',
  plan(input: BindingInput): BindingSlice {
    const plugin = pluginOf(input);
    const podIface = input.podInterfaceName;
    const base = {
      binding: 'plugin' as const,
      plugin,
      podInterface: podIface,
      sysctls: {},
      podSysctls: {},
      dhcp: null,
      dhcpv6: null,
      nft: null,
      hostdev: null,
      needsSharedMemory: false,
    };
    // discover.go stores the pod cache (status IPs) of a plugin network only when its pod interface exists.
    const podLink = input.podIdentity ?? input.podInterface;
    const status = {
      name: input.network.name,
      podInterfaceName: podIface,
      infoSource: input.isPrimary ? 'domain' : 'domain, multus-status',
      linkState: linkStateOf(input.iface),
      ...statusIps(podLink ? orderedPodIps(podLink.ipv4, podLink.ipv6, input.ctx) : []),
    };

    if (plugin.domainAttachmentType === 'managedTap') {
      const identity = requireIdentity(input);
      const tap = tapName(podIface, input.isPrimary);
      const guestMac = resolveGuestMac(input, identity.mac);
      return {
        ...base,
        bridge: bridgeName(podIface),
        tap,
        guestMac,
        podIdentity: identity,
        links: bridgeLinks(input, identity, []),
        // The identity keeper (dummy) holds the pod IPv4, so KubeVirt sets arp_ignore as for bridge.
        podSysctls: firstGlobalIpv4(identity.ipv4) ? { 'net.ipv4.conf.all.arp_ignore': '1' } : {},
        domainInterface: tapDomainInterface(input, tap, guestMac, identity.mtu),
        status: { ...status, ...(guestMac ? { mac: guestMac } : {}), queueCount: Math.max(input.queues, 1) },
      };
    }

    if (plugin.domainAttachmentType === 'tap') {
      // A CNI (macvtap-cni, tap CNI) made the device: target tap<hash> if it exists, else the pod interface itself.
      const hashedTap = tapName(podIface, input.isPrimary);
      const tapLink = input.ctx.pod.interfaces.find((link) => link.name === hashedTap);
      const target = tapLink ?? input.podInterface;
      if (!target) {
        throw new PlanError(
          'pod.interfaces',
          `pod link (${podIface}) is missing: it should carry network "${input.network.name}" (spec.networks[${input.networkIndex}])`,
        );
      }
      // MacvtapLibvirtSpecGenerator: spec MAC, else the pod interface's MAC. The CNI set that MAC on the device
      // (from the Multus request), so neither the status MAC nor a derived "stable" MAC may replace it.
      const specMac = input.iface.macAddress ? normalizeMac(input.iface.macAddress) : null;
      const linkMac = input.podInterface?.mac ?? target.mac;
      const guestMac = specMac ?? normalizeMac(linkMac) ?? linkMac;
      return {
        ...base,
        bridge: null,
        tap: target.name,
        guestMac,
        podIdentity: null,
        links: [],
        domainInterface: tapDomainInterface(input, target.name, guestMac, target.mtu),
        status: { ...status, ...(guestMac ? { mac: guestMac } : {}), queueCount: Math.max(input.queues, 1) },
      };
    }

    // No domain attachment type: the plugin's sidecar adds the interface (OnDefineDomain).
    return { ...base, bridge: null, tap: null, guestMac: null, podIdentity: null, links: [], domainInterface: null, status };
  },
};
