// Decides which networks get anti-spoofing guards (opt-in per VMI annotation or agent flag) and what each guard allows.
import type { SpoofGuard } from '../../bindings/spoof-nft.js';
import { isGlobalUnicast, stripPrefix } from './ip.js';
import type { FieldError, NetworkPlan } from './plan-types.js';
import type { Vmi } from './vmi-types.js';

/** Per-VMI opt-in (or opt-out when the agent runs with --spoof-protection): "true" or "false". */
export const SPOOF_PROTECTION_ANNOTATION = 'virt-net-agent.kubevirt.io/spoof-protection';

/** The annotation wins over the agent-wide flag; any value but "true"/"false" is a validation error. */
export function spoofProtectionWanted(vmi: Vmi, agentDefault: boolean): boolean | FieldError {
  const value = vmi.metadata.annotations?.[SPOOF_PROTECTION_ANNOTATION];
  if (value === undefined) return agentDefault;
  if (value === 'true' || value === 'false') return value === 'true';
  return { field: `metadata.annotations.${SPOOF_PROTECTION_ANNOTATION}`, message: `must be "true" or "false", got ${JSON.stringify(value)}` };
}

/**
 * The guard for one planned network, or a warning saying why it cannot have one. Only a guest behind a tap that is a
 * bridge port can be guarded here (bridge, masquerade, managedTap plugins); passt, macvtap and SR-IOV have no bridge
 * port (an SR-IOV VF has its own `spoofchk` in the NIC).
 */
export function spoofGuardFor(network: NetworkPlan): SpoofGuard | string {
  if (network.tap === null || network.bridge === null) {
    return `spoof protection: network "${network.name}" (${network.binding}) has no bridge port to guard; it is not protected`;
  }
  if (network.guestMac === null) return `spoof protection: network "${network.name}" has no known guest MAC; it is not protected`;
  const base = { network: network.name, tap: network.tap, mac: network.guestMac.toLowerCase() };
  if (network.binding === 'masquerade') {
    // The guest's addresses are the ones our DHCP servers hand out (10.0.2.2, fd10:0:2::2 or the vmNetworkCIDR's).
    const ipv4 = network.dhcp ? [network.dhcp.yiaddr] : [];
    const ipv6 = network.dhcpv6 ? [network.dhcpv6.address] : [];
    return { ...base, ips: { ipv4, ipv6 } };
  }
  // Bridge binding: the guest carries the pod interface's own addresses. Without any, the network is L2 only.
  const identity = network.podIdentity;
  const ipv4 = (identity?.ipv4 ?? []).map(stripPrefix);
  const ipv6 = (identity?.ipv6 ?? []).map(stripPrefix).filter(isGlobalUnicast);
  return { ...base, ips: ipv4.length + ipv6.length > 0 ? { ipv4, ipv6 } : null };
}
