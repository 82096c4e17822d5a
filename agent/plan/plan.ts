// The pure planner: (VMI, pod state, KubeVirt config, phase) → the whole network plan. Never touches the kernel.
import type { Binding, BindingInput, BindingSlice, MasqueradeNftInput, PlanContext } from '../../bindings/binding.js';
import { bridgeBinding } from '../../bindings/bridge.js';
import { queueCount } from '../../bindings/common.js';
import { masqueradeBinding } from '../../bindings/masquerade.js';
import { renderMasqueradeNft } from '../../bindings/masquerade-nft.js';
import { renderSpoofNft, type SpoofGuard } from '../../bindings/spoof-nft.js';
import { passtBinding } from '../../bindings/passt.js';
import { pluginBinding } from '../../bindings/plugin.js';
import { sriovBinding } from '../../bindings/sriov.js';
import { listDomainHostdevs, listDomainInterfaces } from '../../domain/domain-xml.js';
import { setLinkState } from '../../domain/link-state.js';
import { renderHostdev, renderInterface, renderMemoryBacking } from '../../domain/interface-xml.js';
import { applyInterfaceDefaults } from './defaults.js';
import { bridgeName, hashedPodInterfaceName, renamedPodNicName, tapName } from './names.js';
import { assignPodInterfaces, identityFromLink } from './pod-interfaces.js';
import type { PodState } from './pod-state.js';
import type { Arch, DomainOperation, LinkStep, NetworkPlan, Phase, Plan, PodIdentity } from './plan-types.js';
import { spoofGuardFor, spoofProtectionWanted } from './spoof-guard.js';
import { validateVmi } from './validate.js';
import { parseVmiObject } from './vmi-shape.js';
import type { KubeVirtConfig, Vmi, VmiInterface } from './vmi-types.js';

export interface PlanInput {
  /** The VMI object as parsed from YAML/JSON (shape is checked here). */
  readonly vmi: unknown;
  readonly pod: PodState;
  readonly config: KubeVirtConfig;
  readonly phase: Phase;
  readonly arch: Arch;
  readonly myPodIp?: string;
  /** The running domain XML (hotplug/hotunplug planning, link-state updates). */
  readonly domainXml?: string;
  readonly macPolicy?: 'pod' | 'stable';
  /** Original pod interface identities recorded by an earlier setup (state dir), by network name. */
  readonly priorIdentities?: Readonly<Record<string, PodIdentity>>;
  /** Agent-wide default for anti-spoofing guards (the VMI annotation overrides it). */
  readonly spoofProtection?: boolean;
  /**
   * Render the libvirt part (`domain`: interface/hostdev XML, device operations)? Default true. `setup` and
   * `teardown` only plumb the pod, so they skip it and start without loading the XML library.
   */
  readonly renderDomain?: boolean;
  /**
   * Pod sysctls the caller needs beyond the bindings' own, e.g. the binding-plugin CNI's
   * net.ipv4.ip_unprivileged_port_start=0 for the unprivileged hook sidecar's DHCP (as KubeVirt's passt-binding CNI).
   */
  readonly extraPodSysctls?: Readonly<Record<string, string>>;
}

/** libvirt's virDomainDeviceModifyFlags. */
export const AFFECT_LIVE_AND_CONFIG = { flags: ['VIR_DOMAIN_AFFECT_LIVE', 'VIR_DOMAIN_AFFECT_CONFIG'], flagsValue: 3 } as const;

function bindingFor(iface: VmiInterface): Binding {
  if (iface.bridge) return bridgeBinding;
  if (iface.masquerade) return masqueradeBinding;
  if (iface.passtBinding) return passtBinding;
  if (iface.sriov) return sriovBinding;
  return pluginBinding;
}

function emptyPlan(phase: Phase, arch: Arch, vmi: Vmi | null, errors: Plan['errors']): Plan {
  return {
    errors,
    vmi: vmi ? vmiRef(vmi) : null,
    phase,
    arch,
    networks: [],
    sysctls: {},
    nftables: null,
    domain: emptyDomainPlan(),
    warnings: [],
  };
}

function vmiRef(vmi: Vmi): NonNullable<Plan['vmi']> {
  return { name: vmi.metadata.name ?? '', namespace: vmi.metadata.namespace ?? '', uid: vmi.metadata.uid ?? '' };
}

interface Planned {
  readonly slice: BindingSlice;
  readonly iface: VmiInterface;
}

/** A libvirt device operation still to render: detach the running XML, or update its link state. */
interface RunningDeviceChange {
  readonly op: 'detach' | 'update';
  readonly iface: VmiInterface;
  readonly runningXml: string;
}

/**
 * Hot-unplug removes what the bridge binding created, in KubeVirt's desired-spec order (bridge, tap, keeper);
 * the renamed NIC has no type there, so it is the CNI's to remove.
 */
function unplugLinks(podInterfaceName: string, isPrimary: boolean): LinkStep[] {
  return [
    { op: 'delete', kind: 'bridge', name: bridgeName(podInterfaceName) },
    { op: 'delete', kind: 'tap', name: tapName(podInterfaceName, isPrimary) },
    { op: 'delete', kind: 'dummy', name: podInterfaceName },
  ];
}

/**
 * The domain `<memoryBacking>` vhost-user (passt) needs: shared access, with a memfd source where the architecture
 * supports memfd (amd64, arm64; not s390x), as KubeVirt's MemoryBackingConfigurator.
 */
function memoryBackingXml(arch: Arch): string {
  return renderMemoryBacking({ memfd: arch !== 's390x' });
}

export function computePlan(input: PlanInput): Plan {
  const parsed = parseVmiObject(input.vmi);
  const defaulted = applyInterfaceDefaults(parsed, input.config);
  if (defaulted.errors.length > 0) return emptyPlan(input.phase, input.arch, parsed, defaulted.errors);
  const vmi = defaulted.vmi;
  const errors = validateVmi(vmi, input.config, { phase: input.phase });
  if (errors.length > 0) return emptyPlan(input.phase, input.arch, vmi, errors);
  const spoofProtection = spoofProtectionWanted(vmi, input.spoofProtection ?? false);
  if (typeof spoofProtection !== 'boolean') return emptyPlan(input.phase, input.arch, vmi, [spoofProtection]);

  const warnings: string[] = [];
  const ctx: PlanContext = {
    vmi,
    pod: input.pod,
    config: input.config,
    phase: input.phase,
    arch: input.arch,
    myPodIp: input.myPodIp,
    macPolicy: input.macPolicy ?? 'pod',
    warnings,
  };
  const domainDevices = input.domainXml ? listDomainInterfaces(input.domainXml) : null;
  const domainHostdevs = input.domainXml ? listDomainHostdevs(input.domainXml) : null;
  const assignments = assignPodInterfaces(vmi, input.pod);
  const interfaces = vmi.spec.domain?.devices?.interfaces ?? [];
  const networks = vmi.spec.networks ?? [];
  const planned: Planned[] = [];
  const changes: RunningDeviceChange[] = [];
  const networkPlans: NetworkPlan[] = [];

  interfaces.forEach((iface, interfaceIndex) => {
    const networkIndex = networks.findIndex((network) => network.name === iface.name);
    const network = networks[networkIndex];
    const assignment = assignments.get(iface.name);
    if (!network || !assignment) return; // resourceClaim (DRA) networks are not ours to plumb.
    const statusEntry = vmi.status?.interfaces?.find((entry) => entry.name === iface.name);
    const alias = `ua-${iface.name}`;
    const domainEntry = domainDevices?.find((device) => device.alias === alias);
    // SR-IOV is a <hostdev> with alias ua-sriov-<name>, never an <interface>.
    const inDomain = domainDevices
      ? iface.sriov
        ? (domainHostdevs ?? []).some((hostdev) => hostdev.alias === `ua-sriov-${iface.name}`)
        : domainEntry !== undefined
      : (statusEntry?.infoSource ?? '').includes('domain');
    const absent = iface.state === 'absent';

    if (input.phase === 'hotunplug') {
      if (!absent) return;
      networkPlans.push({
        name: iface.name,
        binding: 'bridge',
        state: 'absent',
        podInterface: assignment.name,
        bridge: bridgeName(assignment.name),
        tap: tapName(assignment.name, assignment.isPrimary),
        guestMac: domainEntry?.mac ?? statusEntry?.mac ?? null,
        podIdentity: input.priorIdentities?.[iface.name] ?? null,
        links: unplugLinks(assignment.name, assignment.isPrimary),
        sysctls: {},
        dhcp: null,
        dhcpv6: null,
        status: { name: iface.name },
      });
      if (domainEntry) {
        // Like KubeVirt, only hashed-name taps can be detached: ordinal tapN names are ambiguous after upgrade.
        if (domainEntry.targetDev === tapName(hashedPodInterfaceName(iface.name), false)) {
          changes.push({ op: 'detach', iface, runningXml: domainEntry.xml });
        } else {
          warnings.push(`interface "${iface.name}" uses target ${domainEntry.targetDev ?? '(none)'}, not a hashed tap name: it cannot be unplugged`);
        }
      }
      return;
    }
    if (absent) return;
    if (input.phase === 'hotplug' && inDomain) {
      // Already plugged: only a link-state change can apply.
      if (domainEntry && (domainEntry.linkState ?? 'up') !== (iface.state === 'down' ? 'down' : 'up')) {
        changes.push({ op: 'update', iface, runningXml: domainEntry.xml });
      }
      return;
    }

    const podInterface = input.pod.interfaces.find((link) => link.name === assignment.name);
    const renamedNic = input.pod.interfaces.find((link) => link.name === renamedPodNicName(assignment.name));
    const podIdentity = input.priorIdentities?.[iface.name] ?? (podInterface ? identityFromLink(podInterface, input.pod) : undefined);
    if (input.phase === 'hotplug' && !iface.sriov && !podInterface && !renamedNic && !podIdentity) {
      // KubeVirt plugs a network only once Multus reported its pod interface (status infoSource multus-status).
      warnings.push(`interface "${iface.name}": pod interface ${assignment.name} does not exist yet (not plugged by Multus); not hotplugged`);
      return;
    }
    const bindingInput: BindingInput = {
      network,
      iface,
      interfaceIndex,
      networkIndex,
      podInterfaceName: assignment.name,
      podInterface,
      podIdentity,
      renamedNic,
      isPrimary: assignment.isPrimary,
      inDomain,
      statusEntry,
      queues: queueCount(vmi, iface, statusEntry?.queueCount, inDomain),
      ctx,
    };
    const slice = bindingFor(iface).plan(bindingInput);
    planned.push({ slice, iface });
    networkPlans.push({
      name: iface.name,
      binding: slice.binding,
      ...(slice.plugin ? { plugin: slice.plugin } : {}),
      state: iface.state === 'down' ? 'down' : 'up',
      podInterface: slice.podInterface,
      bridge: slice.bridge,
      tap: slice.tap,
      guestMac: slice.guestMac,
      podIdentity: slice.podIdentity,
      links: slice.links,
      sysctls: slice.sysctls,
      dhcp: slice.dhcp,
      dhcpv6: slice.dhcpv6,
      status: slice.status,
    });
  });

  const domain = input.renderDomain === false ? emptyDomainPlan() : domainPlan(planned, changes, input);

  const podSysctls: Record<string, string> = {};
  for (const entry of planned) Object.assign(podSysctls, entry.slice.podSysctls);
  Object.assign(podSysctls, input.extraPodSysctls ?? {});
  const nftInputs = planned.flatMap((entry) => (entry.slice.nft ? [entry.slice.nft] : []));
  // The guard table is replaced as a whole, so only a phase that plans every network may render it.
  const guards = spoofProtection && (input.phase === 'start' || input.phase === 'migration-target') ? spoofGuards(networkPlans, warnings) : null;
  return {
    errors: [],
    vmi: vmiRef(vmi),
    phase: input.phase,
    arch: input.arch,
    networks: networkPlans,
    sysctls: podSysctls,
    nftables: renderNft(nftInputs, guards),
    domain,
    warnings,
  };
}

function emptyDomainPlan(): Plan['domain'] {
  return { interfaces: [], hostdevs: [], memoryBacking: null, operations: [] };
}

/** The libvirt side of the plan: `<interface>`/`<hostdev>` XML in spec order and the device operations of this phase. */
function domainPlan(planned: readonly Planned[], changes: readonly RunningDeviceChange[], input: PlanInput): Plan['domain'] {
  const interfacesXml = planned.flatMap((entry) => (entry.slice.domainInterface ? [renderInterface(entry.slice.domainInterface)] : []));
  const hostdevsXml = planned.flatMap((entry) => (entry.slice.hostdev ? [renderHostdev(entry.slice.hostdev)] : []));
  const operations: DomainOperation[] = changes.map((change) => ({
    op: change.op,
    network: change.iface.name,
    ...AFFECT_LIVE_AND_CONFIG,
    xml: change.op === 'detach' ? change.runningXml : setLinkState(change.runningXml, change.iface.state === 'down' ? 'down' : 'up'),
  }));
  if (input.phase === 'hotplug') {
    for (const entry of planned) {
      const xml = entry.slice.domainInterface
        ? renderInterface(entry.slice.domainInterface)
        : entry.slice.hostdev
          ? renderHostdev(entry.slice.hostdev)
          : null;
      if (xml) operations.push({ op: 'attach', network: entry.iface.name, ...AFFECT_LIVE_AND_CONFIG, xml });
    }
  }
  return {
    interfaces: interfacesXml,
    hostdevs: hostdevsXml,
    memoryBacking: planned.some((entry) => entry.slice.needsSharedMemory) ? memoryBackingXml(input.arch) : null,
    operations,
  };
}

function spoofGuards(networks: readonly NetworkPlan[], warnings: string[]): SpoofGuard[] {
  const guards: SpoofGuard[] = [];
  for (const network of networks) {
    const guard = spoofGuardFor(network);
    if (typeof guard === 'string') warnings.push(guard);
    else guards.push(guard);
  }
  return guards;
}

/** Masquerade NAT rules, then the anti-spoofing table (null guards: protection off): one transaction. */
function renderNft(inputs: readonly MasqueradeNftInput[], guards: readonly SpoofGuard[] | null): string | null {
  const texts = inputs.map(renderMasqueradeNft);
  if (guards !== null) texts.push(renderSpoofNft(guards));
  return texts.length === 0 ? null : texts.join('\n');
}

