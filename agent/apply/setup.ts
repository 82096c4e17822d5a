// setup and teardown as functions: discover → plan → record → reconcile → execute, and state-driven restore.
import type { DiscoverOptions } from './discover.js';
import { discoverPodState } from './discover.js';
import type { KernelDriver } from '../drivers/kernel.js';
import { createCountingDriver } from '../drivers/counting.js';
import { PlanError } from '../plan/errors.js';
import { executeActions } from './execute.js';
import type { KernelAction } from './kernel-actions.js';
import { computePlan, type PlanInput } from '../plan/plan.js';
import type { Plan, PodIdentity } from '../plan/plan-types.js';
import { plannedSysctlNames, plansNeighbours, reconcile } from './reconcile.js';
import { nftFamiliesOf, ourTablesListing, takeSnapshot } from './snapshot.js';
import { renderSpoofNftTeardown } from '../../bindings/spoof-nft.js';
import { launcherUser } from '../../bindings/common.js';
import type { AgentState, NetworkState, NftTableFamily } from './state-dir.js';
import { StateDir, UntrustedStateError } from './state-dir.js';
import { isPlannableSysctl } from '../plan/sysctl-names.js';
import { teardownActions } from './teardown-plan.js';
import { parseVmiObject } from '../plan/vmi-shape.js';

export interface SetupRequest extends Omit<PlanInput, 'pod' | 'priorIdentities' | 'domainXml'> {
  readonly stateRoot: string;
  /** Write the launcher's read-only copy (serve.json) for `serve` and `domain` (default true; the CNI has no such reader). */
  readonly launcherCopy?: boolean;
  readonly discover: DiscoverOptions;
  readonly dryRun: boolean;
  /** Called after every kernel write (count starts at 1); the crash test hook lives here. */
  readonly onWrite?: (count: number) => void;
}

export interface SetupResult {
  readonly plan: Plan;
  readonly actions: readonly KernelAction[];
  readonly writes: number;
  /**
   * Our tables in the kernel are exactly the listing recorded right after the last `nft -f` (the ruleset as applied,
   * whatever text this version would render now): what CNI CHECK asks, where a re-run asks for the current text.
   */
  readonly nftAsApplied?: boolean;
}

/** The state dir key of a VMI: its uid, else namespace_name. */
export function vmiKey(vmi: unknown): string {
  const parsed = parseVmiObject(vmi);
  const meta = parsed.metadata;
  if (meta.uid) return meta.uid;
  return `${meta.namespace ?? 'default'}_${meta.name ?? 'vmi'}`;
}

function priorIdentities(state: AgentState | null): Record<string, PodIdentity> {
  const identities: Record<string, PodIdentity> = {};
  for (const [name, network] of Object.entries(state?.networks ?? {})) {
    if (network.podIdentity) identities[name] = network.podIdentity;
  }
  return identities;
}

/** What teardown will need, recorded before the first kernel write (so a crash at any point can be undone). */
function stateBeforeApply(
  plan: Plan,
  prior: AgentState | null,
  podLinks: readonly { name: string; index: number }[],
  sysctlsNow: Readonly<Record<string, string | null>>,
  nftTablesNow: readonly NftTableFamily[],
): AgentState {
  const networks: Record<string, NetworkState> = { ...(prior?.networks ?? {}) };
  for (const network of plan.networks) {
    if (network.links.length === 0 || network.state === 'absent') continue;
    const before = prior?.networks[network.name];
    const nicStep = network.links.find((step) => step.kind === 'pod-nic');
    const podIndex = before?.podInterfaceIndex ?? nicStep?.index ?? podLinks.find((link) => link.name === network.podInterface)?.index ?? null;
    networks[network.name] = {
      binding: network.binding,
      podInterface: network.podInterface,
      podInterfaceIndex: podIndex,
      podIdentity: before?.podIdentity ?? network.podIdentity,
      renamedTo: nicStep ? (nicStep.renameTo ?? nicStep.name) : null,
      created: network.links.filter((step) => step.op === 'create').map((step) => step.name),
      bridge: network.bridge,
      dhcp: network.dhcp,
      dhcpv6: network.dhcpv6,
    };
  }
  const sysctlsBefore: Record<string, string | null> = { ...(prior?.sysctlsBefore ?? {}) };
  for (const name of plannedSysctlNames(plan)) {
    if (!(name in sysctlsBefore)) sysctlsBefore[name] = sysctlsNow[name] ?? null;
  }
  const families = nftFamiliesOf(plan.nftables);
  const nft =
    plan.nftables === null
      ? (prior?.nft ?? null)
      : {
          text: prior?.nft?.text === plan.nftables ? prior.nft.text : plan.nftables,
          listing: prior?.nft?.text === plan.nftables ? prior.nft.listing : null,
          applied: prior?.nft?.text === plan.nftables ? (prior.nft.applied ?? prior.nft.listing !== null) : false,
          families,
          tablesBefore: prior?.nft?.tablesBefore ?? families.filter((family) => nftTablesNow.includes(family)),
        };
  return { version: 1, vmi: plan.vmi ?? { name: '', namespace: '', uid: '' }, networks, sysctlsBefore, nft };
}

/**
 * The plan with an anti-spoofing table that an earlier setup created but this plan no longer wants (protection turned
 * off) removed in the same transaction, so nothing of ours is left behind and teardown still knows the table.
 */
function withStaleSpoofTableRemoved(plan: Plan, prior: AgentState | null): Plan {
  if (plan.errors.length > 0 || !prior?.nft?.families.includes('bridge') || nftFamiliesOf(plan.nftables).includes('bridge')) return plan;
  return { ...plan, nftables: `${plan.nftables ?? ''}${renderSpoofNftTeardown()}` };
}

function existingNatTables(listing: string): ('ip' | 'ip6')[] {
  return (['ip', 'ip6'] as const).filter((family) => new RegExp(`^table ${family} nat `, 'm').test(listing));
}

export async function runSetup(driver: KernelDriver, request: SetupRequest): Promise<SetupResult> {
  // serve and domain run as the launcher's user: they read the root-owned serve.json (the folder is 0755 for them).
  const vmi = parseVmiObject(request.vmi);
  const stateDir = new StateDir(request.stateRoot, vmiKey(vmi), { reader: launcherUser(vmi), launcherCopy: request.launcherCopy ?? true });
  await stateDir.lock();
  // Whether this run leaves a record: a run that fails, finds plan errors or is a dry run before any record exists
  // removes the folder lock() made, so bad input leaves nothing behind (an unreadable record is left alone).
  let recorded = true;
  try {
    const prior = stateDir.read();
    recorded = prior !== null;
    const pod = await discoverPodState(driver, request.discover);
    const plan = withStaleSpoofTableRemoved(computePlan({ ...request, pod, priorIdentities: priorIdentities(prior), renderDomain: false }), prior);
    if (plan.errors.length > 0) return { plan, actions: [], writes: 0 };
    const snapshot = await takeSnapshot(driver, plannedSysctlNames(plan), plan.nftables, prior, plansNeighbours(plan));
    const recordedListing = prior?.nft?.listing ?? null;
    const nftAsApplied = prior?.nft?.applied !== false && recordedListing !== null && recordedListing === snapshot.nftListing;
    const needsKeeper = plan.networks.some((network) => network.links.some((step) => step.kind === 'dummy' && step.op === 'create'));
    const dummySupported = prior?.dummySupported ?? (needsKeeper ? await driver.supportsLinkKind('dummy') : false);
    const actions = reconcile(plan, snapshot, { dummySupported });
    if (request.dryRun) return { plan, actions, writes: 0, nftAsApplied };

    const fullListing = plan.nftables !== null && !prior?.nft ? (snapshot.nftRuleset ?? '') : '';
    const state = {
      ...stateBeforeApply(plan, prior, snapshot.links, snapshot.sysctls, existingNatTables(fullListing)),
      ...(needsKeeper || prior?.dummySupported !== undefined ? { dummySupported } : {}),
    };
    if (JSON.stringify(state) !== JSON.stringify(prior)) stateDir.write(state);
    recorded = true;

    let writes = 0;
    const counting = createCountingDriver(driver, (count) => {
      writes = count;
      request.onWrite?.(count);
    });
    await executeActions(counting, actions);
    if (state.nft && actions.some((action) => action.do === 'apply-nft')) {
      // The listing right after (one in-process nft list, ~0.2 ms): what a CNI CHECK compares the kernel against,
      // even after an upgrade to a version that renders another text.
      const listing = ourTablesListing(await driver.nftList(), state.nft.families);
      stateDir.write({ ...state, nft: { ...state.nft, listing, applied: true } });
    } else if (state.nft && state.nft.listing === null && snapshot.nftUpToDate) {
      stateDir.write({ ...state, nft: { ...state.nft, listing: snapshot.nftListing } });
    }
    return { plan, actions, writes, nftAsApplied };
  } finally {
    if (!recorded) stateDir.remove();
    stateDir.unlock();
  }
}

export interface TeardownResult {
  readonly actions: readonly KernelAction[];
  readonly writes: number;
  /** false when there was nothing to undo (no state): a second teardown is a successful no-op. */
  readonly hadState: boolean;
  /** Set when the folder was not root's (an older layout, or planted): removed unread, nothing undone. */
  readonly discardedUntrusted?: string;
}

/** The recorded sysctls whose names a plan can produce (agent/plan/sysctl-names.ts); others are dropped. */
function plannableSysctls(recorded: Readonly<Record<string, string | null>>): Record<string, string | null> {
  return Object.fromEntries(Object.entries(recorded).filter(([name]) => isPlannableSysctl(name)));
}

export async function runTeardown(
  driver: KernelDriver,
  request: { readonly vmi: unknown; readonly stateRoot: string; readonly dryRun: boolean; readonly onWrite?: (count: number) => void },
): Promise<TeardownResult> {
  const stateDir = new StateDir(request.stateRoot, vmiKey(request.vmi));
  try {
    await stateDir.lock();
  } catch (error) {
    if (!(error instanceof UntrustedStateError)) throw error;
    // Its content may be anyone's: nothing in it is undone (the pod's namespace, and what setup made there, goes with
    // the pod). The folder goes, read by no one.
    if (!request.dryRun) stateDir.discardUntrusted();
    return { actions: [], writes: 0, hadState: false, discardedUntrusted: error.oneLine() };
  }
  try {
    const recorded = stateDir.read();
    if (!recorded) {
      // Nothing to undo; the folder lock() just made goes too, so DEL-like repeats leave nothing behind.
      stateDir.remove();
      return { actions: [], writes: 0, hadState: false };
    }
    // Defence in depth: only sysctls a plan can name are restored, whatever the record says.
    const state = { ...recorded, sysctlsBefore: plannableSysctls(recorded.sysctlsBefore) };
    const snapshot = await takeSnapshot(driver, Object.keys(state.sysctlsBefore), null, state);
    const actions = teardownActions(state, snapshot);
    if (request.dryRun) return { actions, writes: 0, hadState: true };
    let writes = 0;
    const counting = createCountingDriver(driver, (count) => {
      writes = count;
      request.onWrite?.(count);
    });
    await executeActions(counting, actions);
    stateDir.remove();
    return { actions, writes, hadState: true };
  } finally {
    stateDir.unlock();
  }
}

