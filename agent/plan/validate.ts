// KubeVirt's VMI admission rules for networks and interfaces (pkg/network/admitter, vmi-create-admitter), with its messages.
import { parseGoMac } from './mac.js';
import { isIPv6Address } from './ip.js';
import type { FieldError, Phase } from './plan-types.js';
import type { KubeVirtConfig, Vmi, VmiInterface, VmiNetwork, VmiPort, VmiPortRange } from './vmi-types.js';

const INTERFACES = 'spec.domain.devices.interfaces';
const NETWORKS = 'spec.networks';
/** The CRD's `maxItems` for interfaces and networks; the API server rejects longer lists before any webhook. */
const MAX_LIST_ITEMS = 256;
const MAX_PORT_RANGES = 10;
const RESERVED_MASQUERADE_MAC = [0x02, 0, 0, 0, 0, 0];
const VALID_MODELS = new Set(['e1000', 'e1000e', 'igb', 'ne2k_pci', 'pcnet', 'rtl8139', 'virtio']);
const INTERFACE_NAME = /^[A-Za-z0-9_-]+$/;
/** pkg/util/hardware PCI_ADDRESS_PATTERN. */
const PCI_ADDRESS = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;
const ALLOW_POD_BRIDGE_MIGRATION_ANNOTATION = 'kubevirt.io/allow-pod-bridge-network-live-migration';

const ifacePath = (i: number): string => `${INTERFACES}[${i}]`;
const netPath = (i: number): string => `${NETWORKS}[${i}]`;

interface Context {
  readonly vmi: Vmi;
  readonly networks: readonly VmiNetwork[];
  readonly ifaces: readonly VmiInterface[];
  readonly config: KubeVirtConfig;
  /** Go's IndexNetworkSpecByName: the last network of a name wins. */
  readonly networksByName: ReadonlyMap<string, VmiNetwork>;
}

function gateEnabled(config: KubeVirtConfig, gate: string): boolean {
  return config.developerConfiguration?.featureGates?.includes(gate) ?? false;
}

// ---------------------------------------------------------------------------------------------------------------
// Go parsers whose exact acceptance matters for the messages.
export { parseGoMac };

function parseGoIPv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const part of parts) {
    // Go rejects leading zeros ("010") since 1.17.
    if (!/^[0-9]{1,3}$/.test(part) || (part.length > 1 && part.startsWith('0'))) return null;
    const n = Number(part);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** The eight 16-bit groups of an IPv6 address (no zone), or null. */
function ipv6Groups(s: string): number[] | null {
  if (s.includes('%') || !isIPv6Address(s)) return null;
  const toGroups = (part: string): number[] | null => {
    if (part === '') return [];
    const groups: number[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const v4 = parseGoIPv4(piece);
        if (v4 === null) return null;
        groups.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        groups.push(parseInt(piece, 16));
      }
    }
    return groups;
  };
  const gap = s.indexOf('::');
  const head = toGroups(gap < 0 ? s : s.slice(0, gap));
  const tail = toGroups(gap < 0 ? '' : s.slice(gap + 2));
  if (head === null || tail === null) return null;
  const zeros = 8 - head.length - tail.length;
  if (zeros < 0 || (gap < 0 && zeros !== 0)) return null;
  return [...head, ...new Array<number>(zeros).fill(0), ...tail];
}

/** Go's `net.ParseIP(s).To4() != nil`: dotted IPv4, or an IPv4-mapped IPv6 address. */
function isGoIPv4(s: string): boolean {
  if (parseGoIPv4(s) !== null) return true;
  const groups = ipv6Groups(s);
  return groups !== null && groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
}

/** k8s.io/apimachinery IsValidPortName (IANA_SVC_NAME). */
function isValidPortName(name: string): boolean {
  return (
    name.length >= 1 &&
    name.length <= 15 &&
    /^[-a-z0-9]+$/.test(name) &&
    /[a-z]/.test(name) &&
    !name.includes('--') &&
    !name.startsWith('-') &&
    !name.endsWith('-')
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Lookups (pkg/network/vmispec).

function bindingCount(iface: VmiInterface): number {
  return [iface.bridge, iface.masquerade, iface.sriov, iface.passtBinding, iface.binding].filter((b) => b !== undefined).length;
}

/** LookUpDefaultNetwork: the first network that is not a secondary Multus network. */
function defaultNetwork(networks: readonly VmiNetwork[]): VmiNetwork | undefined {
  return networks.find((n) => !(n.multus !== undefined && n.multus.default !== true));
}

function podNetwork(networks: readonly VmiNetwork[]): VmiNetwork | undefined {
  return networks.find((n) => n.pod !== undefined);
}

function isReservedMasqueradeMac(mac: string | undefined): boolean {
  if (mac === undefined || mac === '') return false;
  const bytes = parseGoMac(mac);
  return bytes !== null && bytes.length === 6 && bytes.every((b, i) => b === RESERVED_MASQUERADE_MAC[i]);
}

// ---------------------------------------------------------------------------------------------------------------
// Rules, in the order KubeVirt's create admitter runs them.

function validateDiscontinuedBindings(ctx: Context): FieldError[] {
  const errors: FieldError[] = [];
  ctx.ifaces.forEach((iface, i) => {
    if (iface.slirp !== undefined) {
      errors.push({ field: `${ifacePath(i)}.slirp`, message: 'Slirp interface support has been discontinued since v1.3' });
    }
    if (iface.passt !== undefined) {
      errors.push({ field: `${ifacePath(i)}.passt`, message: 'Passt network binding has been discontinued since v1.3' });
    }
    if (iface.macvtap !== undefined) {
      errors.push({ field: `${ifacePath(i)}.macvtap`, message: 'Macvtap network binding has been discontinued since v1.3' });
    }
  });
  return errors;
}

function validateSinglePodNetwork(ctx: Context): FieldError[] {
  const errors: FieldError[] = [];
  const pods = ctx.networks.filter((n) => n.pod !== undefined).length;
  const multusDefaults = ctx.networks.filter((n) => n.multus?.default === true).length;
  if (pods > 1) {
    // KubeVirt's own path quirk: "spec.interfaces".
    errors.push({ field: 'spec.interfaces', message: 'more than one interface is connected to a pod network in spec.interfaces' });
  }
  if (multusDefaults > 1) errors.push({ field: NETWORKS, message: 'Multus CNI should only have one default network' });
  if (pods > 0 && multusDefaults > 0) {
    errors.push({ field: NETWORKS, message: 'Pod network cannot be defined when Multus default network is defined' });
  }
  return errors;
}

function validateSingleNetworkSource(ctx: Context): FieldError[] {
  const errors: FieldError[] = [];
  ctx.networks.forEach((net, i) => {
    const sources = [net.pod, net.multus, net.resourceClaim].filter((s) => s !== undefined).length;
    if (sources === 0) errors.push({ field: netPath(i), message: 'should have a network type' });
    else if (sources > 1) errors.push({ field: netPath(i), message: 'should have only one network type' });
  });
  return errors;
}

function validateMultusNetworkSource(ctx: Context): FieldError[] {
  // KubeVirt stops at the first offending network.
  const i = ctx.networks.findIndex((n) => n.multus !== undefined && (n.multus.networkName ?? '') === '');
  return i < 0 ? [] : [{ field: netPath(i), message: 'CNI delegating plugin must have a networkName' }];
}

function validateInterfaceState(ctx: Context): FieldError[] {
  const errors: FieldError[] = [];
  const defaultNet = defaultNetwork(ctx.networks);
  ctx.ifaces.forEach((iface, i) => {
    const state = iface.state ?? '';
    const field = `${ifacePath(i)}.state`;
    if (!['', 'absent', 'down', 'up'].includes(state)) {
      errors.push({ field, message: `logical ${iface.name} interface state value is unsupported: ${state}` });
    }
    if (iface.sriov !== undefined && (state === 'down' || state === 'up')) {
      errors.push({ field, message: `${JSON.stringify(iface.name)} interface's state ${JSON.stringify(state)} is not supported for SR-IOV NICs` });
    }
    if (state === 'absent' && iface.bridge === undefined) {
      errors.push({ field, message: `${JSON.stringify(iface.name)} interface's state "absent" is supported only for bridge binding` });
    }
    if (state === 'absent' && defaultNet !== undefined && defaultNet.name === iface.name) {
      errors.push({ field, message: `${JSON.stringify(iface.name)} interface's state "absent" is not supported on default networks` });
    }
  });
  return errors;
}

function validateInterfaceBinding(ctx: Context): FieldError[] {
  const errors: FieldError[] = [];
  const plugins = ctx.config.network?.binding ?? {};
  const bridgeOnPodPermitted = ctx.config.network?.permitBridgeInterfaceOnPodNetwork !== false;
  const passtGate = gateEnabled(ctx.config, 'PasstBinding');
  ctx.ifaces.forEach((iface, i) => {
    // A missing network reads as Go's zero Network: no source at all.
    const net = ctx.networksByName.get(iface.name);
    const onPod = net?.pod !== undefined;
    const nameField = `${ifacePath(i)}.name`;
    if (bindingCount(iface) !== 1) {
      errors.push({ field: ifacePath(i), message: `logical ${iface.name} interface must have exactly one binding method or binding plugin` });
    }
    if (iface.masquerade !== undefined && !onPod) {
      errors.push({ field: nameField, message: 'Masquerade interface only implemented with pod network' });
    }
    // KubeVirt compares the string exactly; we also catch other spellings of the same MAC.
    if (iface.masquerade !== undefined && isReservedMasqueradeMac(iface.macAddress)) {
      errors.push({
        field: `${ifacePath(i)}.macAddress`,
        message: 'The requested MAC address is reserved for the in-pod bridge. Please choose another one.',
      });
    }
    if (iface.bridge !== undefined && onPod && !bridgeOnPodPermitted) {
      errors.push({ field: nameField, message: 'Bridge on pod network configuration is not enabled under kubevirt-config' });
    }
    if (iface.passtBinding !== undefined && !passtGate) {
      errors.push({ field: nameField, message: 'PasstBinding feature gate is not enabled' });
    }
    if (iface.passtBinding !== undefined && !onPod) {
      errors.push({ field: nameField, message: 'PasstBinding interface only implemented with pod network' });
    }
    // KubeVirt finds an unregistered plugin only when rendering the launcher pod; the agent needs it now.
    if (iface.binding !== undefined) {
      const pluginName = iface.binding.name ?? '';
      if (!Object.hasOwn(plugins, pluginName)) {
        errors.push({
          field: `${ifacePath(i)}.binding.name`,
          message: `unable to find the network binding plugin '${pluginName}' in Kubevirt configuration`,
        });
      }
    }
  });
  return errors;
}

function validateNetworkNameUnique(ctx: Context): FieldError[] {
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  ctx.networks.forEach((net, i) => {
    if (seen.has(net.name)) {
      errors.push({
        field: `${netPath(i)}.name`,
        message: `Network with name ${JSON.stringify(net.name)} already exists, every network must have a unique name`,
      });
    }
    seen.add(net.name);
  });
  return errors;
}

function validateNetworksAssignedToInterfaces(ctx: Context): FieldError[] {
  const names = new Set(ctx.ifaces.map((iface) => iface.name));
  const errors: FieldError[] = [];
  ctx.networks.forEach((net, i) => {
    if (!names.has(net.name)) errors.push({ field: `${netPath(i)}.name`, message: `${netPath(i)}.name '${net.name}' not found.` });
  });
  return errors;
}

function validateInterfaceNameUnique(ctx: Context): FieldError[] {
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  ctx.ifaces.forEach((iface, i) => {
    if (seen.has(iface.name)) {
      errors.push({ field: `${ifacePath(i)}.name`, message: 'Only one interface can be connected to one specific network' });
    }
    seen.add(iface.name);
  });
  return errors;
}

function validateInterfacesAssignedToNetworks(ctx: Context): FieldError[] {
  const errors: FieldError[] = [];
  ctx.ifaces.forEach((iface, i) => {
    if (!ctx.networksByName.has(iface.name)) {
      errors.push({ field: `${ifacePath(i)}.name`, message: `${ifacePath(i)}.name '${iface.name}' not found.` });
    }
  });
  return errors;
}

function validateInterfaceNameFormat(iface: VmiInterface, i: number): FieldError[] {
  if (INTERFACE_NAME.test(iface.name)) return [];
  return [
    {
      field: `${ifacePath(i)}.name`,
      message: 'Network interface name can only contain alphabetical characters, numbers, dashes (-) or underscores (_)',
    },
  ];
}

function validateInterfaceModel(iface: VmiInterface, i: number): FieldError[] {
  const model = iface.model ?? '';
  if (model === '' || VALID_MODELS.has(model)) return [];
  return [{ field: `${ifacePath(i)}.model`, message: `interface ${ifacePath(i)}.name uses model ${model} that is not supported.` }];
}

function validateMacAddress(iface: VmiInterface, i: number): FieldError[] {
  const mac = iface.macAddress ?? '';
  if (mac === '') return [];
  const bytes = parseGoMac(mac);
  const field = `${ifacePath(i)}.macAddress`;
  if (bytes === null) return [{ field, message: `interface ${ifacePath(i)}.name has malformed MAC address (${mac}).` }];
  if (bytes.length > 6) return [{ field, message: `interface ${ifacePath(i)}.name has too long MAC address (${mac}).` }];
  return [];
}

function validatePciAddress(iface: VmiInterface, i: number): FieldError[] {
  const pci = iface.pciAddress ?? '';
  if (pci === '' || PCI_ADDRESS.test(pci)) return [];
  return [{ field: `${ifacePath(i)}.pciAddress`, message: `interface ${ifacePath(i)}.name has malformed PCI address (${pci}).` }];
}

function validateForwardPorts(ports: readonly VmiPort[], i: number): FieldError[] {
  const errors: FieldError[] = [];
  const portPath = (j: number): string => `${ifacePath(i)}.ports[${j}]`;
  const names = new Set<string>();
  ports.forEach((port, j) => {
    const name = port.name ?? '';
    if (name === '') return;
    if (names.has(name)) errors.push({ field: `${portPath(j)}.name`, message: `Duplicate name of the port: ${name}` });
    if (!isValidPortName(name)) errors.push({ field: `${portPath(j)}.name`, message: `Invalid name of the port: ${name}` });
    names.add(name);
  });
  ports.forEach((port, j) => {
    const number = port.port ?? 0;
    if (number === 0) errors.push({ field: `${portPath(j)}.port`, message: 'Port field is mandatory.' });
    // KubeVirt's bound is `> 65536`, so 65536 itself passes.
    if (number < 0 || number > 65536) errors.push({ field: `${portPath(j)}.port`, message: 'Port field must be in range 0 < x < 65536.' });
    const protocol = port.protocol ?? '';
    if (protocol !== '' && protocol !== 'TCP' && protocol !== 'UDP') {
      errors.push({ field: `${portPath(j)}.protocol`, message: 'Unknown protocol, only TCP or UDP allowed' });
    }
  });
  return errors;
}

function validatePortRanges(ranges: readonly VmiPortRange[], i: number): FieldError[] {
  const errors: FieldError[] = [];
  const rangePath = (j: number): string => `${ifacePath(i)}.portRanges[${j}]`;
  if (ranges.length > MAX_PORT_RANGES) {
    errors.push({ field: `${ifacePath(i)}.portRanges`, message: `No more than ${MAX_PORT_RANGES} portRanges are allowed` });
  }
  const byProtocol = new Map<string, { start: number; end: number }[]>();
  ranges.forEach((range, j) => {
    let protocol = range.protocol ?? '';
    if (protocol === '') protocol = 'TCP';
    else if (protocol !== 'TCP' && protocol !== 'UDP') {
      errors.push({ field: `${rangePath(j)}.protocol`, message: 'Unknown protocol, only TCP or UDP allowed' });
    }
    const start = range.start ?? 0;
    const end = range.end ?? 0;
    if (start <= 0 || start >= 65536) errors.push({ field: `${rangePath(j)}.start`, message: 'Start must be a valid port number, 0 < x < 65536' });
    if (end <= 0 || end >= 65536) errors.push({ field: `${rangePath(j)}.end`, message: 'End must be a valid port number, 0 < x < 65536' });
    if (start > end) errors.push({ field: `${rangePath(j)}.start`, message: 'Start must be less than or equal to end' });
    const list = byProtocol.get(protocol) ?? [];
    list.push({ start, end });
    byProtocol.set(protocol, list);
  });
  for (const [protocol, list] of byProtocol) {
    for (let a = 0; a < list.length; a++) {
      for (let b = a + 1; b < list.length; b++) {
        const x = list[a];
        const y = list[b];
        if (x !== undefined && y !== undefined && x.start <= y.end && y.start <= x.end) {
          errors.push({
            field: `${ifacePath(i)}.portRanges`,
            message: `${protocol} portRanges [${x.start}-${x.end}] and [${y.start}-${y.end}] overlap`,
          });
        }
      }
    }
  }
  return errors;
}

function validatePortConfiguration(ctx: Context, iface: VmiInterface, i: number): FieldError[] {
  const errors: FieldError[] = [];
  const nameField = `${ifacePath(i)}.name`;
  if (iface.portRanges !== undefined && !gateEnabled(ctx.config, 'PortRangesSpec')) {
    return [{ field: nameField, message: 'portRanges is specified on interface but the PortRangesSpec feature gate is not enabled' }];
  }
  // Forwarded ports are checked only for the pod network.
  if (ctx.networksByName.get(iface.name)?.pod === undefined) return errors;
  if (iface.ports !== undefined && iface.portRanges !== undefined) {
    errors.push({ field: nameField, message: 'Cannot define both ports and portRanges on interface' });
  }
  if (iface.ports !== undefined) errors.push(...validateForwardPorts(iface.ports, i));
  if (iface.portRanges !== undefined) {
    if (iface.masquerade === undefined) errors.push({ field: nameField, message: 'portRanges are only supported on masquerade interfaces' });
    errors.push(...validatePortRanges(iface.portRanges, i));
  }
  return errors;
}

function validateDhcpOptions(iface: VmiInterface, i: number): FieldError[] {
  const dhcp = iface.dhcpOptions;
  if (dhcp === undefined) return [];
  const errors: FieldError[] = [];
  const privateOptions = dhcp.privateOptions ?? [];
  // Both private-option messages carry KubeVirt's bare "spec" path.
  if (new Set(privateOptions.map((o) => o.option)).size < privateOptions.length) {
    errors.push({ field: 'spec', message: 'Found Duplicates: you have provided duplicate DHCPPrivateOptions' });
  }
  for (const option of privateOptions) {
    if (!(option.option >= 224 && option.option <= 254)) {
      errors.push({ field: 'spec', message: 'provided DHCPPrivateOptions are out of range, must be in range 224 to 254' });
    }
  }
  (dhcp.ntpServers ?? []).forEach((server, j) => {
    if (!isGoIPv4(server)) {
      errors.push({ field: `${ifacePath(i)}.dhcpOptions.ntpServers[${j}]`, message: 'NTP servers must be a list of valid IPv4 addresses.' });
    }
  });
  return errors;
}

function validateInterfacesFields(ctx: Context): FieldError[] {
  return ctx.ifaces.flatMap((iface, i) => [
    ...validateInterfaceNameFormat(iface, i),
    ...validateInterfaceModel(iface, i),
    ...validateMacAddress(iface, i),
    ...validatePciAddress(iface, i),
    ...validatePortConfiguration(ctx, iface, i),
    ...validateDhcpOptions(iface, i),
  ]);
}

/** The names in `spec.resourceClaims` (not in the typed VMI; the parser keeps unknown fields). */
function resourceClaimNames(vmi: Vmi): Set<string> {
  const claims: unknown = (vmi.spec as { readonly resourceClaims?: unknown }).resourceClaims;
  const names = new Set<string>();
  if (Array.isArray(claims)) {
    for (const claim of claims as unknown[]) {
      if (typeof claim === 'object' && claim !== null && typeof (claim as { name?: unknown }).name === 'string') {
        names.add((claim as { name: string }).name);
      }
    }
  }
  return names;
}

function validateNetworkDevicesWithDra(ctx: Context): FieldError[] {
  if (!ctx.networks.some((n) => n.resourceClaim !== undefined)) return [];
  if (!gateEnabled(ctx.config, 'NetworkDevicesWithDRA')) {
    return [{ field: NETWORKS, message: 'NetworkDevicesWithDRA feature gate is not enabled in kubevirt-config' }];
  }
  const errors: FieldError[] = [];
  const claims = resourceClaimNames(ctx.vmi);
  const firstIndexByKey = new Map<string, number>();
  ctx.networks.forEach((net, i) => {
    const claimName = net.resourceClaim?.claimName ?? '';
    const requestName = net.resourceClaim?.requestName ?? '';
    const key = `${claimName}/${requestName}`;
    if (claimName !== '' && requestName !== '' && !firstIndexByKey.has(key)) firstIndexByKey.set(key, i);
  });
  let hasMultus = false;
  ctx.networks.forEach((net, i) => {
    if (net.resourceClaim === undefined) {
      if (net.multus !== undefined) hasMultus = true;
      return;
    }
    const iface = ctx.ifaces.find((candidate) => candidate.name === net.name);
    if (iface !== undefined && iface.sriov === undefined) {
      errors.push({ field: INTERFACES, message: `DRA network ${JSON.stringify(net.name)} requires an SR-IOV interface binding` });
    }
    const claimName = net.resourceClaim.claimName ?? '';
    const requestName = net.resourceClaim.requestName ?? '';
    if (claimName === '') errors.push({ field: `${netPath(i)}.resourceClaim.claimName`, message: 'claimName is required for DRA network' });
    if (requestName === '') {
      errors.push({ field: `${netPath(i)}.resourceClaim.requestName`, message: 'requestName is required for DRA network' });
    }
    if (claimName === '' || requestName === '') return;
    if (!claims.has(claimName)) {
      errors.push({
        field: `${netPath(i)}.resourceClaim.claimName`,
        message: `network references resourceClaim ${JSON.stringify(claimName)} which is not defined in spec.resourceClaims`,
      });
    }
    const key = `${claimName}/${requestName}`;
    const first = firstIndexByKey.get(key);
    if (first !== undefined && first !== i) {
      errors.push({ field: netPath(i), message: `duplicate claimName/requestName combination ${JSON.stringify(key)}` });
    }
  });
  if (hasMultus) errors.push({ field: NETWORKS, message: 'mixing Multus and DRA resourceClaim networks in the same VMI is not supported' });
  return errors;
}

/** Boot orders are unique across disks (registered first) and interfaces. */
function validateBootOrder(ctx: Context): FieldError[] {
  const errors: FieldError[] = [];
  const used = new Set<number>();
  (ctx.vmi.spec.domain?.devices?.disks ?? []).forEach((disk, i) => {
    if (disk.bootOrder === undefined) return;
    const field = `spec.domain.devices.disks[${i}].bootOrder`;
    if (used.has(disk.bootOrder)) errors.push({ field, message: `Boot order for ${field} already set for a different device.` });
    used.add(disk.bootOrder);
  });
  ctx.ifaces.forEach((iface, i) => {
    if (iface.bootOrder === undefined) return;
    if (iface.bootOrder < 1) {
      // KubeVirt's path quirk: the index hangs off "spec" itself.
      errors.push({ field: `spec[${i}].bootOrder`, message: `spec[${i}] must have a boot order > 0, if supplied` });
      return;
    }
    const field = `${ifacePath(i)}.bootOrder`;
    if (used.has(iface.bootOrder)) errors.push({ field, message: `Boot order for ${field} already set for a different device.` });
    used.add(iface.bootOrder);
  });
  return errors;
}

/** The network part of launch-security validation (pkg/virt-api/webhooks/amd64.go): no bootable NICs. */
function validateLaunchSecurity(ctx: Context): FieldError[] {
  const security = ctx.vmi.spec.domain?.launchSecurity;
  if (security === undefined) return [];
  const field = 'spec.launchSecurity';
  const types: string[] = [];
  let gate = '';
  if (security.sev !== undefined) {
    types.push('SEV');
    gate = 'WorkloadEncryptionSEV';
  }
  if (security.snp !== undefined) {
    types.push('SNP');
    gate = 'WorkloadEncryptionSEV';
  }
  if (security.tdx !== undefined) {
    types.push('TDX');
    gate = 'WorkloadEncryptionTDX';
  }
  const [type] = types;
  if (types.length !== 1 || type === undefined) return [{ field, message: 'One and only one launchSecurity type can be set' }];
  if (!gateEnabled(ctx.config, gate)) return [{ field, message: `${gate} feature gate is not enabled in kubevirt-config` }];
  return ctx.ifaces
    .filter((iface) => iface.bootOrder !== undefined)
    .map((iface) => ({ field, message: `${type} does not work with bootable NICs: ${iface.name}` }));
}

/**
 * Validates a VMI's networks and interfaces as KubeVirt's admission webhook does, with KubeVirt's messages and
 * field paths (prefix `spec`). The discontinued-binding check runs only when the VMI is created (`start`).
 */
export function validateVmi(vmi: Vmi, config: KubeVirtConfig, opts: { readonly phase: Phase }): FieldError[] {
  const networks = vmi.spec.networks ?? [];
  const ifaces = vmi.spec.domain?.devices?.interfaces ?? [];

  const tooMany: FieldError[] = [];
  if (ifaces.length > MAX_LIST_ITEMS) {
    tooMany.push({ field: INTERFACES, message: `Too many: ${ifaces.length}: must have at most ${MAX_LIST_ITEMS} items` });
  }
  if (networks.length > MAX_LIST_ITEMS) {
    tooMany.push({ field: NETWORKS, message: `Too many: ${networks.length}: must have at most ${MAX_LIST_ITEMS} items` });
  }
  if (tooMany.length > 0) return tooMany;

  const ctx: Context = { vmi, networks, ifaces, config, networksByName: new Map(networks.map((n) => [n.name, n])) };
  return [
    ...(opts.phase === 'start' ? validateDiscontinuedBindings(ctx) : []),
    ...validateSinglePodNetwork(ctx),
    ...validateSingleNetworkSource(ctx),
    ...validateMultusNetworkSource(ctx),
    ...validateInterfaceState(ctx),
    ...validateInterfaceBinding(ctx),
    ...validateNetworkNameUnique(ctx),
    ...validateNetworksAssignedToInterfaces(ctx),
    ...validateInterfaceNameUnique(ctx),
    ...validateInterfacesAssignedToNetworks(ctx),
    ...validateInterfacesFields(ctx),
    ...validateNetworkDevicesWithDra(ctx),
    ...validateBootOrder(ctx),
    ...validateLaunchSecurity(ctx),
  ];
}

/**
 * KubeVirt's VerifyVMIMigratable: the pod network must use masquerade or passtBinding, bridge with the
 * allow-pod-bridge-network-live-migration annotation, or a binding plugin registered with `migration`.
 * Returns KubeVirt's message when the VMI cannot migrate, else null.
 */
export function verifyMigratable(vmi: Vmi, config: KubeVirtConfig): string | null {
  const ifaces = vmi.spec.domain?.devices?.interfaces ?? [];
  if (ifaces.length === 0) return null;
  const pod = podNetwork(vmi.spec.networks ?? []);
  const podIface = pod === undefined ? undefined : ifaces.find((iface) => iface.name === pod.name);
  // No pod network, or no interface for it: nothing on the pod network blocks migration.
  if (podIface === undefined) return null;
  const annotations = vmi.metadata.annotations ?? {};
  if (podIface.bridge !== undefined && Object.hasOwn(annotations, ALLOW_POD_BRIDGE_MIGRATION_ANNOTATION)) return null;
  if (podIface.masquerade !== undefined || podIface.passtBinding !== undefined) return null;
  if (podIface.binding !== undefined) {
    const plugin = config.network?.binding?.[podIface.binding.name ?? ''];
    if (plugin?.migration !== undefined) return null;
  }
  return 'cannot migrate VMI which does not use masquerade or a migratable plugin to connect to the pod network';
}
