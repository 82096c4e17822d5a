// Pure teardown: (state dir, kernel snapshot) → the actions that restore the pod as CNI left it.
import { formatCidr, networkOf, parseCidr } from '../plan/ip.js';
import type { KernelAction } from './kernel-actions.js';
import { renderMasqueradeNftTeardown } from '../../bindings/masquerade-nft.js';
import { renderSpoofNftTeardown } from '../../bindings/spoof-nft.js';
import { isKernelManagedAddress, type KernelSnapshot } from './reconcile.js';
import type { AgentState, NetworkState } from './state-dir.js';

/** Routes the kernel adds by itself when an address is configured (the connected subnet). */
function isConnectedRoute(route: { dst: string; gw?: string }, addresses: readonly string[]): boolean {
  if (route.gw) return false;
  const destination = parseCidr(route.dst);
  if (!destination) return false;
  return addresses.some((address) => {
    const cidr = parseCidr(address);
    return cidr !== null && formatCidr(networkOf(cidr)) === formatCidr(destination);
  });
}

function restorePodNic(network: NetworkState, snapshot: KernelSnapshot, actions: KernelAction[]): void {
  const identity = network.podIdentity;
  if (!identity || network.renamedTo === null || network.podInterfaceIndex === null) return;
  const link = snapshot.links.find((candidate) => candidate.index === network.podInterfaceIndex);
  if (!link) return; // the pod NIC is gone with its pod: nothing to restore
  let name = link.name;
  if (link.masterIndex !== null) actions.push({ do: 'set-link', link: name, master: null });
  const rename = name !== identity.name;
  const macChange = link.mac.toLowerCase() !== identity.mac.toLowerCase();
  if ((rename || macChange) && link.up) actions.push({ do: 'set-link', link: name, up: false });
  if (rename) {
    actions.push({ do: 'set-link', link: name, name: identity.name });
    name = identity.name;
  }
  if (macChange) actions.push({ do: 'set-link', link: name, mac: identity.mac });
  if (link.mtu !== identity.mtu) actions.push({ do: 'set-link', link: name, mtu: identity.mtu });
  const present = snapshot.addresses.filter((address) => address.index === link.index && !isKernelManagedAddress(address)).map((a) => a.cidr);
  const wanted = [...identity.ipv4, ...identity.ipv6].filter((cidr) => !/^fe[89ab][0-9a-f]:/i.test(cidr));
  for (const cidr of wanted.filter((cidr) => !present.includes(cidr))) actions.push({ do: 'add-address', link: name, cidr });
  actions.push({ do: 'set-link', link: name, up: true });
  // Gateways must be reachable first: device routes, then routes via a gateway (Calico's 169.254.1.1/32 first).
  const routes = identity.routes.filter((route) => !isConnectedRoute(route, wanted));
  const ordered = [...routes.filter((route) => !route.gw), ...routes.filter((route) => route.gw)];
  for (const route of ordered) {
    const family = route.dst.includes(':') || (route.gw ?? '').includes(':') ? 6 : 4;
    const exists = snapshot.routes.some(
      (current) => current.index === link.index && current.dst === route.dst && (current.gw ?? undefined) === route.gw,
    );
    if (!exists) actions.push({ do: 'add-route', link: name, dst: route.dst, family, ...(route.gw ? { gw: route.gw } : {}) });
  }
}

export function teardownActions(state: AgentState, snapshot: KernelSnapshot): KernelAction[] {
  const actions: KernelAction[] = [];
  const deleted = new Set<string>();
  const networks = Object.values(state.networks).reverse();
  for (const network of networks) {
    for (const name of [...network.created].reverse()) {
      const link = snapshot.links.find((candidate) => candidate.name === name);
      // Never delete the pod NIC itself: a keeper only exists under its name once the NIC was renamed.
      if (!link || link.index === network.podInterfaceIndex) continue;
      deleted.add(name);
    }
  }
  // Sysctls and nft first: they cost little now, whereas right after a link deletion they would wait for it (the
  // kernel holds rtnl through part of an unregister, and an ip_forward write spins on rtnl_trylock until it is free).
  for (const [name, before] of Object.entries(state.sysctlsBefore)) {
    const current = snapshot.sysctls[name];
    const ofDeletedLink = [...deleted].some((link) => name.includes(`.${link}.`));
    if (before !== null && current !== null && current !== undefined && current !== before && !ofDeletedLink) {
      actions.push({ do: 'write-sysctl', name, value: before });
    }
  }
  if (state.nft) {
    const texts = state.nft.families.map((family) =>
      family === 'bridge'
        ? renderSpoofNftTeardown()
        : state.nft?.tablesBefore.includes(family)
        ? renderMasqueradeNftTeardown(family === 'ip' ? { ipv4: STUB_V4, ipv6: null } : { ipv4: null, ipv6: STUB_V6 })
        : `add table ${family} nat\ndelete table ${family} nat\n`,
    );
    actions.push({ do: 'apply-nft', text: texts.join('') });
  }
  // Every link we made goes in one kernel batch (one RCU grace period instead of one per link), before any pod NIC
  // takes its name back from its keeper. A bridge's ports are released with it.
  const [only, ...more] = [...deleted];
  if (only !== undefined) actions.push(more.length === 0 ? { do: 'delete-link', link: only } : { do: 'delete-links', links: [only, ...more] });
  for (const network of networks) restorePodNic(network, snapshot, actions);
  return actions;
}

// renderMasqueradeNftTeardown only looks at which families are present.
const STUB_V4 = { guest: '10.0.2.2', gateway: '10.0.2.1', podIp: null };
const STUB_V6 = { guest: 'fd10:0:2::2', gateway: 'fd10:0:2::1' };
