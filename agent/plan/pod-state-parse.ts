// Checks that a parsed document is a PodState (what `discover` prints, what `plan --pod` reads): pure, every error names the field path.
import { InputError } from './errors.js';
import { isIPv4Address, isIPv6Address } from './ip.js';
import type { DeviceInfo, MultusNetworkStatus, NetworkInfo, PodInterface, PodRoute, PodState } from './pod-state.js';

// Errors name the field path, e.g. "pod.interfaces[2].mtu".

type Obj = Readonly<Record<string, unknown>>;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return JSON.stringify(shown);
  }
  return String(value);
}

function fail(path: string, message: string): never {
  throw new InputError(path, message);
}

function asObject(value: unknown, path: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(path, `expected an object, got ${describe(value)}`);
  }
  return value as Obj;
}

function asArray(value: unknown, path: string): readonly unknown[] {
  if (!Array.isArray(value)) fail(path, `expected a list, got ${describe(value)}`);
  return value;
}

function rejectUnknownKeys(o: Obj, path: string, known: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) fail(`${path}.${key}`, `unknown field (known fields: ${known.join(', ')})`);
  }
}

function requiredString(o: Obj, key: string, path: string, nonEmpty = true): string {
  const v = o[key];
  if (v === undefined) fail(`${path}.${key}`, 'required');
  if (typeof v !== 'string') fail(`${path}.${key}`, `expected a string, got ${describe(v)}`);
  if (nonEmpty && v === '') fail(`${path}.${key}`, 'must not be empty');
  return v;
}

function optionalString(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(`${path}.${key}`, `expected a string, got ${describe(v)}`);
  return v;
}

function integerIn(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(path, `expected an integer from ${min} to ${max}, got ${describe(v)}`);
  }
  return v;
}

function optionalBoolean(o: Obj, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(`${path}.${key}`, `expected true or false, got ${describe(v)}`);
  return v;
}

/** Linux dev_valid_name(): 1–15 bytes, not "." or "..", no "/", ":" or whitespace. */
function checkLinkName(v: string, path: string): string {
  if (v.length === 0 || Buffer.byteLength(v) > 15 || v === '.' || v === '..' || /[/:\s]/.test(v)) {
    fail(path, `not a valid Linux interface name: ${describe(v)}`);
  }
  return v;
}

/** Colon-separated hardware address: 6 bytes (Ethernet) or 20 (InfiniBand); lower-cased. */
function checkMac(v: string, path: string): string {
  const lower = v.toLowerCase();
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(lower) && !/^[0-9a-f]{2}(:[0-9a-f]{2}){19}$/.test(lower)) {
    fail(path, `not a MAC address (expected aa:bb:cc:dd:ee:ff), got ${describe(v)}`);
  }
  return lower;
}

function isCidr(v: string, family: 4 | 6): boolean {
  const slash = v.indexOf('/');
  if (slash < 0) return false;
  const ip = v.slice(0, slash);
  const prefix = v.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix)) return false;
  const bits = Number(prefix);
  return family === 4 ? isIPv4Address(ip) && bits <= 32 : isIPv6Address(ip) && bits <= 128;
}

function cidrList(o: Obj, key: string, path: string, family: 4 | 6): readonly string[] {
  const v = o[key];
  if (v === undefined) fail(`${path}.${key}`, 'required (use [] for none)');
  return asArray(v, `${path}.${key}`).map((item, i) => {
    const p = `${path}.${key}[${i}]`;
    if (typeof item !== 'string' || !isCidr(item, family)) {
      const example = family === 4 ? '10.244.1.5/24' : 'fd00:10:244::5/64';
      fail(p, `expected an IPv${family} address with prefix length, e.g. ${example}, got ${describe(item)}`);
    }
    return item;
  });
}

const INTERFACE_KEYS = ['name', 'index', 'kind', 'mac', 'mtu', 'up', 'master', 'ipv4', 'ipv6'] as const;

function parsePodInterface(value: unknown, path: string): PodInterface {
  const o = asObject(value, path);
  rejectUnknownKeys(o, path, INTERFACE_KEYS);
  const name = checkLinkName(requiredString(o, 'name', path), `${path}.name`);
  if (o['index'] === undefined) fail(`${path}.index`, 'required');
  const index = integerIn(o['index'], `${path}.index`, 1, 2 ** 31 - 1);
  const kind = requiredString(o, 'kind', path);
  const mac = checkMac(requiredString(o, 'mac', path), `${path}.mac`);
  if (o['mtu'] === undefined) fail(`${path}.mtu`, 'required');
  const mtu = integerIn(o['mtu'], `${path}.mtu`, 1, 65536);
  const up = optionalBoolean(o, 'up', path);
  if (up === undefined) fail(`${path}.up`, 'required');
  const master = optionalString(o, 'master', path);
  if (master !== undefined) checkLinkName(master, `${path}.master`);
  const ipv4 = cidrList(o, 'ipv4', path, 4);
  const ipv6 = cidrList(o, 'ipv6', path, 6);
  return { name, index, kind, mac, mtu, up, ...(master !== undefined ? { master } : {}), ipv4, ipv6 };
}

const ROUTE_KEYS = ['dst', 'dev', 'gw'] as const;

function parsePodRoute(value: unknown, path: string, linkNames: ReadonlySet<string>): PodRoute {
  const o = asObject(value, path);
  rejectUnknownKeys(o, path, ROUTE_KEYS);
  const dst = requiredString(o, 'dst', path);
  if (dst !== 'default' && !isCidr(dst, 4) && !isCidr(dst, 6)) {
    fail(`${path}.dst`, `expected "default" or a CIDR such as 10.244.0.0/16, got ${describe(dst)}`);
  }
  const dev = requiredString(o, 'dev', path);
  if (!linkNames.has(dev)) fail(`${path}.dev`, `no interface named ${describe(dev)} in pod.interfaces`);
  const gw = optionalString(o, 'gw', path);
  if (gw !== undefined && !isIPv4Address(gw) && !isIPv6Address(gw)) fail(`${path}.gw`, `not an IP address: ${describe(gw)}`);
  return { dst, dev, ...(gw !== undefined ? { gw } : {}) };
}

function parseDeviceInfo(value: unknown, path: string): DeviceInfo {
  const o = asObject(value, path);
  const type = requiredString(o, 'type', path);
  const version = optionalString(o, 'version', path);
  let pci: DeviceInfo['pci'];
  if (o['pci'] !== undefined) {
    const p = asObject(o['pci'], `${path}.pci`);
    const pciAddress = optionalString(p, 'pci-address', `${path}.pci`);
    const pfPciAddress = optionalString(p, 'pf-pci-address', `${path}.pci`);
    const rdmaDevice = optionalString(p, 'rdma-device', `${path}.pci`);
    pci = {
      ...(pciAddress !== undefined ? { 'pci-address': pciAddress } : {}),
      ...(pfPciAddress !== undefined ? { 'pf-pci-address': pfPciAddress } : {}),
      ...(rdmaDevice !== undefined ? { 'rdma-device': rdmaDevice } : {}),
    };
  }
  return { type, ...(version !== undefined ? { version } : {}), ...(pci !== undefined ? { pci } : {}) };
}

/** One element of the Multus network-status annotation. Unknown keys (gateway, …) are tolerated and dropped. */
function parseNetworkStatus(value: unknown, path: string): MultusNetworkStatus {
  const o = asObject(value, path);
  const name = requiredString(o, 'name', path);
  const iface = optionalString(o, 'interface', path);
  let ips: readonly string[] | undefined;
  if (o['ips'] !== undefined) {
    ips = asArray(o['ips'], `${path}.ips`).map((ip, i) => {
      if (typeof ip !== 'string' || (!isIPv4Address(ip) && !isIPv6Address(ip))) fail(`${path}.ips[${i}]`, `not an IP address: ${describe(ip)}`);
      return ip;
    });
  }
  const macRaw = optionalString(o, 'mac', path);
  const mac = macRaw !== undefined ? checkMac(macRaw, `${path}.mac`) : undefined;
  const mtu = o['mtu'] !== undefined ? integerIn(o['mtu'], `${path}.mtu`, 1, 65536) : undefined;
  const isDefault = optionalBoolean(o, 'default', path);
  const dns = o['dns'] !== undefined ? asObject(o['dns'], `${path}.dns`) : undefined;
  const deviceInfo = o['device-info'] !== undefined ? parseDeviceInfo(o['device-info'], `${path}.device-info`) : undefined;
  return {
    name,
    ...(iface !== undefined ? { interface: iface } : {}),
    ...(ips !== undefined ? { ips } : {}),
    ...(mac !== undefined ? { mac } : {}),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(isDefault !== undefined ? { default: isDefault } : {}),
    ...(dns !== undefined ? { dns } : {}),
    ...(deviceInfo !== undefined ? { 'device-info': deviceInfo } : {}),
  };
}

function parseNetworkInfo(value: unknown, path: string): NetworkInfo {
  const o = asObject(value, path);
  if (o['interfaces'] === undefined) return {};
  const interfaces = asArray(o['interfaces'], `${path}.interfaces`).map((item, i) => {
    const p = `${path}.interfaces[${i}]`;
    const e = asObject(item, p);
    const network = requiredString(e, 'network', p);
    const deviceInfo = e['deviceInfo'] !== undefined ? parseDeviceInfo(e['deviceInfo'], `${p}.deviceInfo`) : undefined;
    const macRaw = optionalString(e, 'mac', p);
    const mac = macRaw !== undefined ? checkMac(macRaw, `${p}.mac`) : undefined;
    const mtu = e['mtu'] !== undefined ? integerIn(e['mtu'], `${p}.mtu`, 1, 65536) : undefined;
    return {
      network,
      ...(deviceInfo !== undefined ? { deviceInfo } : {}),
      ...(mac !== undefined ? { mac } : {}),
      ...(mtu !== undefined ? { mtu } : {}),
    };
  });
  return { interfaces };
}

/** "$comment" (the JSON Schema convention) lets a hand-written JSON file say what it is for; it is ignored. */
const POD_KEYS = ['$comment', 'hostname', 'interfaces', 'routes', 'resolvConf', 'networkStatus', 'networkInfo'] as const;

/**
 * Checks that a parsed document is a PodState (what `discover` prints). Errors name the field,
 * e.g. InputError("pod.interfaces[2].mtu", "expected an integer from 1 to 65536, got \"big\"").
 * MAC addresses are lower-cased; unknown keys inside Multus annotations are dropped.
 */
export function parsePodState(value: unknown, path = 'pod'): PodState {
  const o = asObject(value, path);
  rejectUnknownKeys(o, path, POD_KEYS);
  optionalString(o, '$comment', path);
  const hostname = requiredString(o, 'hostname', path);
  if (o['interfaces'] === undefined) fail(`${path}.interfaces`, 'required');
  const interfaces = asArray(o['interfaces'], `${path}.interfaces`).map((item, i) =>
    parsePodInterface(item, `${path}.interfaces[${i}]`),
  );

  const byName = new Map<string, number>();
  const byIndex = new Map<number, number>();
  interfaces.forEach((iface, i) => {
    const sameName = byName.get(iface.name);
    if (sameName !== undefined) fail(`${path}.interfaces[${i}].name`, `duplicate name ${describe(iface.name)} (also ${path}.interfaces[${sameName}])`);
    const sameIndex = byIndex.get(iface.index);
    if (sameIndex !== undefined) fail(`${path}.interfaces[${i}].index`, `duplicate index ${iface.index} (also ${path}.interfaces[${sameIndex}])`);
    byName.set(iface.name, i);
    byIndex.set(iface.index, i);
  });
  interfaces.forEach((iface, i) => {
    if (iface.master !== undefined && !byName.has(iface.master)) {
      fail(`${path}.interfaces[${i}].master`, `no interface named ${describe(iface.master)} in ${path}.interfaces`);
    }
  });

  if (o['routes'] === undefined) fail(`${path}.routes`, 'required (use [] for none)');
  const names = new Set(byName.keys());
  const routes = asArray(o['routes'], `${path}.routes`).map((item, i) => parsePodRoute(item, `${path}.routes[${i}]`, names));
  const resolvConf = requiredString(o, 'resolvConf', path, false);

  const networkStatus =
    o['networkStatus'] !== undefined
      ? asArray(o['networkStatus'], `${path}.networkStatus`).map((item, i) => parseNetworkStatus(item, `${path}.networkStatus[${i}]`))
      : undefined;
  const networkInfo = o['networkInfo'] !== undefined ? parseNetworkInfo(o['networkInfo'], `${path}.networkInfo`) : undefined;

  return {
    hostname,
    interfaces,
    routes,
    resolvConf,
    ...(networkStatus !== undefined ? { networkStatus } : {}),
    ...(networkInfo !== undefined ? { networkInfo } : {}),
  };
}
