// The sysctls a plan can name (KubeVirt's fixed list): teardown restores only these, whatever a state record says.
//
// Bindings set net.ipv4.ip_forward and net.ipv6.conf.all.forwarding (masquerade), net.ipv4.conf.<bridge>.route_localnet
// (masquerade), net.ipv4.conf.all.arp_ignore (bridge, managedTap), net.ipv4.ping_group_range and
// net.ipv4.ip_unprivileged_port_start (passt, the binding-plugin CNI's sidecar); KubeVirt also sets arp_ignore on a
// bridge. Nothing else (kernel.core_pattern, any name outside net.*) is ever written back.

const FIXED = new Set(['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.all.arp_ignore', 'net.ipv4.ping_group_range', 'net.ipv4.ip_unprivileged_port_start']);

/** A link name as it can appear in a sysctl path: 1-15 characters, none of them a dot, slash or space. */
const PER_LINK = /^net\.ipv4\.conf\.([A-Za-z0-9_-]{1,15})\.(route_localnet|arp_ignore)$/;

export function isPlannableSysctl(name: string): boolean {
  if (FIXED.has(name)) return true;
  const match = PER_LINK.exec(name);
  return match !== null && match[1] !== 'all' && match[1] !== 'default';
}
