// Shape checks for untrusted VMI and KubeVirt-config input: every type error names the exact field path.
import { InputError } from './errors.js';
import type { KubeVirtConfig, Vmi } from './vmi-types.js';

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How a value reads in an error message: strings quoted, containers named. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/**
 * Walks one object: each known key is checked and normalised, unknown keys are carried through.
 * Like Go's JSON decoder, an explicit `null` on an optional field means "not set", so it is dropped.
 */
class ObjectReader {
  readonly out: Obj;

  constructor(
    private readonly src: Obj,
    private readonly path: string,
  ) {
    this.out = { ...src };
  }

  private at(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  /** The raw value, or undefined when absent or null (and then removed from the output). */
  private raw(key: string): unknown {
    const value = this.src[key];
    if (value === null || value === undefined) {
      delete this.out[key];
      return undefined;
    }
    return value;
  }

  string(key: string, required = false): void {
    const value = this.raw(key);
    if (value === undefined) {
      if (required) throw new InputError(this.at(key), 'is required');
      return;
    }
    if (typeof value !== 'string') throw new InputError(this.at(key), `must be a string, got ${describe(value)}`);
  }

  boolean(key: string): void {
    const value = this.raw(key);
    if (value !== undefined && typeof value !== 'boolean') {
      throw new InputError(this.at(key), `must be a boolean, got ${describe(value)}`);
    }
  }

  /** An integer that fits Go's int32 (or, with `unsigned`, Go's uint: negative values fail to decode). */
  integer(key: string, unsigned = false): void {
    const value = this.raw(key);
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw new InputError(this.at(key), `must be an integer, got ${describe(value)}`);
    }
    if (unsigned && value < 0) throw new InputError(this.at(key), `must be a non-negative integer, got ${value}`);
    if (!unsigned && (value < -2147483648 || value > 2147483647)) {
      throw new InputError(this.at(key), `must be a 32-bit integer, got ${value}`);
    }
  }

  stringList(key: string): void {
    const value = this.raw(key);
    if (value === undefined) return;
    if (!Array.isArray(value)) throw new InputError(this.at(key), `must be a list, got ${describe(value)}`);
    value.forEach((item, i) => {
      if (typeof item !== 'string') throw new InputError(`${this.at(key)}[${i}]`, `must be a string, got ${describe(item)}`);
    });
  }

  stringMap(key: string): void {
    const value = this.raw(key);
    if (value === undefined) return;
    if (!isObject(value)) throw new InputError(this.at(key), `must be an object, got ${describe(value)}`);
    for (const [k, v] of Object.entries(value)) {
      if (typeof v !== 'string') throw new InputError(`${this.at(key)}.${k}`, `must be a string, got ${describe(v)}`);
    }
  }

  object(key: string, check?: (reader: ObjectReader) => void, required = false): void {
    const value = this.raw(key);
    if (value === undefined) {
      if (required) throw new InputError(this.at(key), 'is required');
      return;
    }
    if (!isObject(value)) throw new InputError(this.at(key), `must be an object, got ${describe(value)}`);
    const reader = new ObjectReader(value, this.at(key));
    check?.(reader);
    this.out[key] = reader.out;
  }

  objectList(key: string, check: (reader: ObjectReader) => void): void {
    const value = this.raw(key);
    if (value === undefined) return;
    if (!Array.isArray(value)) throw new InputError(this.at(key), `must be a list, got ${describe(value)}`);
    this.out[key] = value.map((item, i) => {
      const path = `${this.at(key)}[${i}]`;
      if (!isObject(item)) throw new InputError(path, `must be an object, got ${describe(item)}`);
      const reader = new ObjectReader(item, path);
      check(reader);
      return reader.out;
    });
  }

  objectMap(key: string, check: (reader: ObjectReader) => void): void {
    this.object(key, (map) => {
      for (const name of Object.keys(map.src)) map.object(name, check);
    });
  }
}

const INTERFACE_BINDING_KEYS = ['bridge', 'masquerade', 'sriov', 'passtBinding', 'slirp', 'macvtap', 'passt'] as const;

function checkNetwork(net: ObjectReader): void {
  net.string('name', true);
  net.object('pod', (pod) => {
    pod.string('vmNetworkCIDR');
    pod.string('vmIPv6NetworkCIDR');
  });
  net.object('multus', (multus) => {
    multus.string('networkName');
    multus.boolean('default');
  });
  net.object('resourceClaim', (claim) => {
    claim.string('claimName');
    claim.string('requestName');
  });
}

function checkInterface(iface: ObjectReader): void {
  iface.string('name', true);
  for (const key of INTERFACE_BINDING_KEYS) iface.object(key);
  iface.object('binding', (binding) => binding.string('name'));
  iface.string('model');
  iface.string('macAddress');
  iface.string('pciAddress');
  iface.string('tag');
  iface.string('state');
  iface.integer('bootOrder', true);
  iface.integer('acpiIndex');
  iface.objectList('ports', (port) => {
    port.string('name');
    port.string('protocol');
    port.integer('port');
  });
  iface.objectList('portRanges', (range) => {
    range.string('protocol');
    range.integer('start');
    range.integer('end');
  });
  iface.object('dhcpOptions', (dhcp) => {
    dhcp.string('bootFileName');
    dhcp.string('tftpServerName');
    dhcp.stringList('ntpServers');
    dhcp.objectList('privateOptions', (option) => {
      option.integer('option');
      option.string('value');
    });
  });
}

function checkSpec(spec: ObjectReader): void {
  spec.objectList('networks', checkNetwork);
  spec.string('hostname');
  spec.string('subdomain');
  spec.object('domain', (domain) => {
    domain.object('devices', (devices) => {
      devices.objectList('interfaces', checkInterface);
      devices.objectList('disks', (disk) => {
        disk.string('name', true);
        disk.integer('bootOrder', true);
      });
      devices.boolean('autoattachPodInterface');
      devices.boolean('networkInterfaceMultiqueue');
      devices.boolean('useVirtioTransitional');
    });
    domain.object('cpu', (cpu) => {
      cpu.integer('sockets', true);
      cpu.integer('cores', true);
      cpu.integer('threads', true);
    });
    domain.object('launchSecurity', (sec) => {
      sec.object('sev');
      sec.object('snp');
      sec.object('tdx');
    });
  });
}

/** The VMIs parseVmiObject returned (normalised copies nobody mutates: the Vmi type is readonly throughout). */
const PARSED_VMIS = new WeakSet<object>();

function checkStatus(status: ObjectReader): void {
  status.objectList('interfaces', (iface) => {
    for (const key of ['name', 'mac', 'podInterfaceName', 'infoSource', 'linkState', 'ipAddress', 'interfaceName']) {
      iface.string(key);
    }
    iface.integer('queueCount');
    iface.stringList('ipAddresses');
  });
  status.string('migrationTransport');
  status.integer('runtimeUser');
}

/**
 * Checks that `value` is a VirtualMachineInstance and that every field networking reads has the right type.
 * Returns a normalised copy (explicit nulls on optional fields removed, unknown fields kept).
 * Throws InputError naming the first bad field.
 * A value this function returned comes back as is: a command parses its VMI once (readPlanInputs), and the later
 * stages that take the VMI (computePlan, the state dir key, the launcher user) do not walk it again.
 */
export function parseVmiObject(value: unknown): Vmi {
  if (isObject(value) && PARSED_VMIS.has(value)) return value as unknown as Vmi;
  if (!isObject(value)) throw new InputError('kind', `expected a VirtualMachineInstance, got ${describe(value)}`);
  if (value['kind'] !== undefined && value['kind'] !== 'VirtualMachineInstance') {
    const kind = value['kind'];
    throw new InputError('kind', `expected a VirtualMachineInstance, got ${typeof kind === 'string' ? kind : describe(kind)}`);
  }
  const root = new ObjectReader(value, '');
  root.string('apiVersion');
  const apiVersion = value['apiVersion'];
  if (typeof apiVersion === 'string' && !apiVersion.startsWith('kubevirt.io/')) {
    throw new InputError('apiVersion', `expected kubevirt.io/v1, got ${JSON.stringify(apiVersion)}`);
  }
  root.object(
    'metadata',
    (meta) => {
      meta.string('name');
      meta.string('namespace');
      meta.string('uid');
      meta.stringMap('annotations');
      meta.stringMap('labels');
    },
    true,
  );
  root.object('spec', checkSpec, true);
  root.object('status', checkStatus);
  const parsed = root.out as unknown as Vmi;
  PARSED_VMIS.add(parsed);
  return parsed;
}

const DEFAULT_NETWORK_INTERFACES = new Set(['', 'bridge', 'masquerade', 'slirp', 'passt']);

/**
 * Accepts the KubeVirt CR's `spec.configuration`, or a whole KubeVirt CR (then its spec.configuration is used).
 * Checks the types of the fields networking reads; an unknown default binding is rejected the way KubeVirt's
 * config validation does ("invalid default-network-interface in config: X").
 */
export function parseKubeVirtConfig(value: unknown): KubeVirtConfig {
  if (!isObject(value)) throw new InputError('configuration', `expected a KubeVirt CR or its spec.configuration, got ${describe(value)}`);
  const kind = value['kind'];
  let configuration: Obj = value;
  let prefix = '';
  if (kind !== undefined) {
    if (kind !== 'KubeVirt') {
      throw new InputError('kind', `expected a KubeVirt CR or its spec.configuration, got ${typeof kind === 'string' ? kind : describe(kind)}`);
    }
    const spec = value['spec'] ?? {};
    if (!isObject(spec)) throw new InputError('spec', `must be an object, got ${describe(spec)}`);
    const inner = spec['configuration'] ?? {};
    if (!isObject(inner)) throw new InputError('spec.configuration', `must be an object, got ${describe(inner)}`);
    configuration = inner;
    prefix = 'spec.configuration';
  }
  const root = new ObjectReader(configuration, prefix);
  root.object('developerConfiguration', (dev) => dev.stringList('featureGates'));
  root.object('network', (network) => {
    network.boolean('permitBridgeInterfaceOnPodNetwork');
    network.string('defaultNetworkInterface');
    network.objectMap('binding', (plugin) => {
      plugin.string('sidecarImage');
      plugin.string('networkAttachmentDefinition');
      plugin.string('domainAttachmentType');
      plugin.object('migration', (migration) => migration.string('method'));
      plugin.string('downwardAPI');
    });
  });
  const network = root.out['network'];
  const iface = isObject(network) ? network['defaultNetworkInterface'] : undefined;
  if (typeof iface === 'string' && !DEFAULT_NETWORK_INTERFACES.has(iface)) {
    throw new InputError(
      prefix === '' ? 'network.defaultNetworkInterface' : `${prefix}.network.defaultNetworkInterface`,
      `invalid default-network-interface in config: ${iface}`,
    );
  }
  return root.out as KubeVirtConfig;
}
