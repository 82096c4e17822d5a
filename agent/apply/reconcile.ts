// Pure reconciliation: (plan, kernel snapshot) → the ordered kernel actions; nothing when the pod already matches.
import { macFromSeed } from '../plan/mac.js';
import type { AddressInfo, LinkInfo, NeighbourInfo, RouteInfo } from '../drivers/kernel.js';
import { AgentError } from '../plan/errors.js';
import type { KernelAction } from './kernel-actions.js';
import type { LinkStep, Plan } from '../plan/plan-types.js';

export interface KernelSnapshot {
  readonly links: readonly LinkInfo[];
  readonly addresses: readonly AddressInfo[];
  readonly routes: readonly RouteInfo[];
  /** Current values of the sysctls the plan names (null: does not exist yet). */
  readonly sysctls: Readonly<Record<string, string | null>>;
  /** Does the kernel already hold exactly the plan's nftables ruleset? */
  readonly nftUpToDate: boolean;
  /** Neighbour entries; read only when the plan asks for some (absent: none are read, none are planned). */
  readonly neighbours?: readonly NeighbourInfo[];
}

export interface ReconcileOptions {
  /** Can this kernel create `dummy` links? If not, the identity keeper is a port-less, down bridge. */
  readonly dummySupported: boolean;
}

/** A conflict the agent will not resolve by force (e.g. a foreign link where our bridge must be). */
export class ApplyError extends AgentError {
  constructor(field: string, message: string) {
    super(field, message, 4);
    this.name = 'ApplyError';
  }
}

/**
 * A bridge created without a MAC follows its lowest port's MAC, so copying "the bridge MAC" to the pod NIC would
 * never settle. We give every bridge we create a fixed, locally administered MAC derived from its name and the
 * pod NIC it serves, so a re-run (or a run after a crash) computes the same value.
 */
export function pinnedBridgeMac(bridgeName: string, seed: string): string {
  return macFromSeed(`virt-net-agent/${bridgeName}/${seed}`);
}

/**
 * IPv6 link-local addresses are the kernel's: it adds one to every link that comes up. They are never removed, and
 * count as present when a step plans one (the identity keeper, which stays down, is given the pod NIC's explicitly).
 */
export function isKernelManagedAddress(address: Pick<AddressInfo, 'family' | 'cidr'>): boolean {
  return address.family === 6 && /^fe[89ab][0-9a-f]:/i.test(address.cidr);
}

interface ModelLink {
  name: string;
  readonly index: number | null;
  kind: string;
  mac: string;
  mtu: number;
  up: boolean;
  master: string | null;
  learning: boolean | null;
  /** Addresses we manage (IPv6 link-local ones excluded). */
  addresses: string[];
  /** IPv6 link-local addresses on the link. */
  linkLocal: string[];
  /**
   * Neighbour entries with a MAC the kernel sends to, ip → whether the entry is permanent (a round-2 agent pinned
   * the guest that way; such an entry is replaced, since the kernel never re-learns it).
   */
  validNeighbours: Map<string, { readonly permanent: boolean; readonly reachable: boolean; readonly mac: string }>;
  readonly tun: LinkInfo['tun'];
}

/** The kernel as the actions so far would leave it. */
class Model {
  /** A migration target's setup: the guest is not in this pod yet (neighbour entries are set fresh). */
  guestAbsent = false;
  readonly links: ModelLink[];

  constructor(snapshot: KernelSnapshot) {
    const nameOf = (index: number | null): string | null => snapshot.links.find((link) => link.index === index)?.name ?? null;
    this.links = snapshot.links.map((link) => ({
      name: link.name,
      index: link.index,
      kind: link.kind,
      mac: link.mac,
      mtu: link.mtu,
      up: link.up,
      master: nameOf(link.masterIndex),
      learning: link.learning,
      addresses: snapshot.addresses
        .filter((address) => address.index === link.index && !isKernelManagedAddress(address))
        .map((address) => address.cidr),
      linkLocal: snapshot.addresses.filter((address) => address.index === link.index && isKernelManagedAddress(address)).map((address) => address.cidr),
      validNeighbours: new Map(
        (snapshot.neighbours ?? []).filter((entry) => entry.index === link.index && entry.valid).map((entry) => [entry.ip, { permanent: entry.permanent, reachable: entry.reachable, mac: entry.mac.toLowerCase() }]),
      ),
      tun: link.tun,
    }));
  }

  byName(name: string): ModelLink | undefined {
    return this.links.find((link) => link.name === name);
  }

  byIndex(index: number): ModelLink | undefined {
    return this.links.find((link) => link.index === index);
  }

  add(link: Omit<ModelLink, 'index' | 'tun' | 'learning' | 'master' | 'addresses' | 'linkLocal' | 'validNeighbours'>): ModelLink {
    const created: ModelLink = { ...link, index: null, tun: null, learning: null, master: null, addresses: [], linkLocal: [], validNeighbours: new Map() };
    this.links.push(created);
    return created;
  }

  remove(name: string): void {
    const position = this.links.findIndex((link) => link.name === name);
    if (position >= 0) this.links.splice(position, 1);
  }
}

function sameMac(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Brings one link's MAC, MTU, addresses, master, learning and state to the step's values. */
function convergeLink(model: Model, link: ModelLink, step: LinkStep, actions: KernelAction[]): void {
  const wantedMac = step.mac === undefined ? undefined : resolveMac(model, step.mac);
  const macChange = wantedMac !== undefined && !sameMac(link.mac, wantedMac);
  const rename = step.renameTo !== undefined && step.renameTo !== link.name;
  // Renames need the link down; MAC changes are refused on some running links (veth without live change).
  if ((rename || macChange) && link.up) {
    actions.push({ do: 'set-link', link: link.name, up: false });
    link.up = false;
    link.validNeighbours.clear(); // the kernel flushes them when the link goes down
  }
  if (rename && step.renameTo !== undefined) {
    if (model.byName(step.renameTo)) {
      throw new ApplyError('pod.interfaces', `cannot rename ${link.name} to ${step.renameTo}: a link with that name exists`);
    }
    actions.push({ do: 'set-link', link: link.name, name: step.renameTo });
    link.name = step.renameTo;
  }
  if (macChange && wantedMac !== undefined) {
    actions.push({ do: 'set-link', link: link.name, mac: wantedMac });
    link.mac = wantedMac;
  }
  if (step.mtu !== undefined && link.mtu !== step.mtu) {
    actions.push({ do: 'set-link', link: link.name, mtu: step.mtu });
    link.mtu = step.mtu;
  }
  if (step.addresses !== undefined) {
    for (const cidr of link.addresses.filter((current) => !step.addresses?.includes(current))) {
      actions.push({ do: 'delete-address', link: link.name, cidr });
    }
    for (const cidr of step.addresses.filter((wanted) => !link.addresses.includes(wanted) && !link.linkLocal.includes(wanted))) {
      actions.push({ do: 'add-address', link: link.name, cidr });
    }
    const isLinkLocal = (cidr: string): boolean => isKernelManagedAddress({ family: cidr.includes(':') ? 6 : 4, cidr });
    link.addresses = step.addresses.filter((cidr) => !isLinkLocal(cidr));
    link.linkLocal = [...new Set([...link.linkLocal, ...step.addresses.filter(isLinkLocal)])];
  }
  if (step.master !== undefined && link.master !== step.master) {
    actions.push({ do: 'set-link', link: link.name, master: step.master });
    link.master = step.master;
    link.learning = true; // a new bridge port learns by default
  }
  if (step.learning !== undefined && link.learning !== step.learning) {
    actions.push({ do: 'set-learning', link: link.name, learning: step.learning });
    link.learning = step.learning;
  }
  if (step.up !== undefined && link.up !== step.up) {
    actions.push({ do: 'set-link', link: link.name, up: step.up });
    link.up = step.up;
  }
}

/**
 * The step's neighbour entries, once every link of its network is in place: a port joining or leaving a bridge can
 * change the bridge's carrier, and a carrier loss flushes every entry that is not permanent (the driver settles a
 * pending one before it writes). An entry the kernel already resolves (ours, or one it learned) is left alone whatever
 * its MAC: the guest may have changed its MAC since, and the kernel re-verifies it. Except on a migration target,
 * where no guest runs yet: there the entry must be fresh (REACHABLE, the status MAC) when the guest arrives, or
 * pre-switchover traffic re-verifies it into FAILED (a pod set up a while before, or reused).
 */
function convergeNeighbours(model: Model, step: LinkStep, actions: KernelAction[]): void {
  if (step.op === 'delete' || (step.neighbours ?? []).length === 0) return;
  const link = model.byName(step.renameTo ?? step.name);
  if (!link) return;
  for (const entry of step.neighbours ?? []) {
    const mac = entry.mac.toLowerCase();
    const held = link.validNeighbours.get(entry.ip);
    if (held !== undefined && !held.permanent && (!model.guestAbsent || (held.reachable && held.mac === mac))) continue;
    actions.push({ do: 'set-neighbour', link: link.name, ip: entry.ip, mac });
    link.validNeighbours.set(entry.ip, { permanent: false, reachable: true, mac });
  }
}

function resolveMac(model: Model, mac: string): string {
  if (!mac.startsWith('copy-from:')) return mac;
  const source = mac.slice('copy-from:'.length);
  const link = model.byName(source);
  if (!link) throw new ApplyError('plan.links', `cannot copy the MAC of ${source}: no such link`);
  return link.mac;
}

function reconcileStep(model: Model, step: LinkStep, seed: string, options: ReconcileOptions, actions: KernelAction[]): void {
  if (step.op === 'delete') {
    if (model.byName(step.name)) {
      actions.push({ do: 'delete-link', link: step.name });
      model.remove(step.name);
    }
    return;
  }
  if (step.kind === 'pod-nic') {
    const link =
      (step.index !== undefined ? model.byIndex(step.index) : undefined) ??
      model.byName(step.renameTo ?? step.name) ??
      model.byName(step.name);
    if (!link) throw new ApplyError('pod.interfaces', `pod interface ${step.name} not found`);
    convergeLink(model, link, step, actions);
    return;
  }
  let link = model.byName(step.name);
  const wantedKind = step.kind === 'tap' ? 'tun' : step.kind;
  if (link && step.kind === 'tap' && link.tun && link.tun.owner !== null && step.owner && link.tun.owner !== step.owner.uid) {
    // A tap with the wrong owner cannot be re-owned once persistent and in use: replace it.
    actions.push({ do: 'delete-link', link: link.name });
    model.remove(link.name);
    link = undefined;
  }
  if (link && step.kind !== 'dummy' && link.kind !== wantedKind) {
    throw new ApplyError('pod.interfaces', `link ${step.name} exists as a ${link.kind}, expected a ${wantedKind}`);
  }
  if (!link) {
    if (step.kind === 'bridge') {
      const mac = step.mac ?? pinnedBridgeMac(step.name, seed);
      actions.push({ do: 'create-bridge', link: step.name, mac });
      link = model.add({ name: step.name, kind: 'bridge', mac, mtu: 1500, up: false });
    } else if (step.kind === 'tap') {
      const owner = step.owner ?? { uid: 0, gid: 0 };
      actions.push({ do: 'create-tap', link: step.name, queues: step.queues ?? 0, owner });
      link = model.add({ name: step.name, kind: 'tun', mac: '', mtu: 1500, up: false });
    } else {
      const keeperKind = options.dummySupported ? 'dummy' : 'bridge';
      actions.push({ do: 'create-keeper', link: step.name, keeperKind });
      link = model.add({ name: step.name, kind: keeperKind, mac: '', mtu: 1500, up: false });
    }
  }
  convergeLink(model, link, step, actions);
}

/** The actions that bring the pod from the snapshot to the plan, in a safe order: links, sysctls, nftables. */
export function reconcile(plan: Plan, snapshot: KernelSnapshot, options: ReconcileOptions): KernelAction[] {
  const model = new Model(snapshot);
  model.guestAbsent = plan.phase === 'migration-target';
  const actions: KernelAction[] = [];
  for (const network of plan.networks) {
    const seed = network.podIdentity?.mac ?? network.name;
    for (const step of network.links) reconcileStep(model, step, seed, options, actions);
    for (const step of network.links) convergeNeighbours(model, step, actions);
  }
  const sysctls = { ...plan.sysctls, ...Object.assign({}, ...plan.networks.map((network) => network.sysctls)) } as Record<string, string>;
  for (const [name, value] of Object.entries(sysctls)) {
    if (snapshot.sysctls[name] !== value) actions.push({ do: 'write-sysctl', name, value });
  }
  if (plan.nftables !== null && !snapshot.nftUpToDate) actions.push({ do: 'apply-nft', text: plan.nftables });
  return actions;
}

/** Does any link step of the plan name neighbour entries (the snapshot must then list them)? */
export function plansNeighbours(plan: Plan): boolean {
  return plan.networks.some((network) => network.links.some((step) => (step.neighbours?.length ?? 0) > 0));
}

/** Every sysctl name the plan sets (the snapshot must hold their current values). */
export function plannedSysctlNames(plan: Plan): string[] {
  return [...Object.keys(plan.sysctls), ...plan.networks.flatMap((network) => Object.keys(network.sysctls))];
}
