// Role 1's result: the pod NIC, the keeper, the bridge and the tap (in the netns) plus the guest, and the guest's addressing.
import type { LinkInfo } from '../drivers/kernel.js';
import type { NetworkPlan } from '../plan/plan-types.js';
import type { PrevResult, ResultInterface, ResultIp } from './prev-result.js';
import type { CniResultBody } from './result.js';

/** IPv4 text of the first address in a DHCP option payload (hex), e.g. option 3 (router). */
function firstIpv4(hex: string | undefined): string | undefined {
  if (hex === undefined || hex.length < 8) return undefined;
  return [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
}

/** What the guest gets: the planned DHCPv4/DHCPv6 leases, else (passt) the pod NIC's own addresses. */
function guestIps(network: NetworkPlan, podIps: readonly ResultIp[], guestIndex: number): ResultIp[] {
  const ips: ResultIp[] = [];
  if (network.dhcp) {
    const gateway = firstIpv4(network.dhcp.options['3']);
    ips.push({ address: `${network.dhcp.yiaddr}/${network.dhcp.prefixLength}`, ...(gateway ? { gateway } : {}), interface: guestIndex });
  }
  if (network.dhcpv6) ips.push({ address: `${network.dhcpv6.address}/${network.dhcpv6.prefixLength}`, interface: guestIndex });
  if (ips.length > 0) return ips;
  return podIps.map((ip) => ({ ...ip, interface: guestIndex }));
}

/**
 * A chained plugin passes its prevResult on and adds to it. interfaces: the primary plugin's as they were (its own
 * CHECK reads them), then every link of the plan in the pod that is not among them (sandbox = CNI_NETNS, e.g. the
 * renamed NIC, the bridge, the tap) with its kernel MAC, then the guest itself (sandbox = CNI_CONTAINERID, mac = the
 * guest MAC, as tc-redirect-tap reports its VM side). ips: the primary's as they were, then the guest's addressing on
 * the guest interface where the guest takes the pod's own address (bridge, passt). routes and dns: the primary's.
 */
export function chainedResult(
  network: NetworkPlan,
  prev: PrevResult,
  podIps: readonly ResultIp[],
  links: readonly LinkInfo[],
  netns: string,
  containerId: string,
): CniResultBody {
  const interfaces: ResultInterface[] = [...prev.interfaces];
  const inPod = (name: string) => interfaces.some((entry) => entry.name === name && entry.sandbox !== undefined);
  for (const step of network.links) {
    if (step.op === 'delete') continue;
    const name = step.renameTo ?? step.name;
    if (inPod(name)) continue;
    const link = links.find((entry) => entry.name === name);
    if (!link?.mac) continue;
    interfaces.push({ name, mac: link.mac, sandbox: netns });
  }
  const guestIndex = interfaces.length;
  const guestMac = network.guestMac?.toLowerCase() ?? links.find((entry) => entry.name === network.tap)?.mac;
  interfaces.push({ name: network.tap ?? network.podInterface ?? 'guest', ...(guestMac ? { mac: guestMac } : {}), sandbox: containerId });
  // Only addresses the pod itself holds: reference plugins' CHECK (bridge: ValidateExpectedInterfaceIPs) expects every
  // result IP on CNI_IFNAME, so masquerade's NAT-internal guest address (10.0.2.2) stays out (docs/cni.md).
  const podAddresses = new Set(podIps.map((ip) => ip.address));
  const guest = guestIps(network, podIps, guestIndex).filter((ip) => podAddresses.has(ip.address));
  return { interfaces, ips: [...prev.ips, ...guest], routes: prev.routes, dns: prev.dns };
}
