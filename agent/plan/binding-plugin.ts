// The network binding plugin role's VMI rewrite, shared by the CNI (role 2) and the hook sidecar: interfaces bound to our plugin are planned as masquerade.
//
// In the user's VMI such an interface says `binding: {name: <plugin>}` (KubeVirt's network binding plugin API,
// spec.configuration.network.binding.<plugin> in the KubeVirt CR); the plugin's CNI plumbs it as masquerade and its
// sidecar emits the <interface> and serves DHCP for it, so both plan it as `masquerade: {}` with everything else the
// user wrote (ports, macAddress, dhcpOptions…).
import { InputError } from './errors.js';

const BINDING_KEYS = ['bridge', 'masquerade', 'passtBinding', 'sriov', 'macvtap', 'slirp', 'passt', 'binding'];

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function objectAt(value: unknown, ...path: string[]): Record<string, unknown> {
  let current: unknown = value;
  for (const key of path) current = isObject(current) ? current[key] : undefined;
  return isObject(current) ? current : {};
}

export function listAt(value: unknown, ...path: string[]): unknown[] {
  const list = objectAt(value, ...path.slice(0, -1))[path[path.length - 1] ?? ''];
  return Array.isArray(list) ? list : [];
}

/** The interface as masquerade: every binding key removed, `masquerade: {}` added, the rest kept. */
export function asMasquerade(iface: Record<string, unknown>): Record<string, unknown> {
  const rest = Object.fromEntries(Object.entries(iface).filter(([key]) => !BINDING_KEYS.includes(key)));
  return { ...rest, masquerade: {} };
}

/** Does the VMI's running migration name `podName` as its target pod (KubeVirt: status.migrationState.targetPod)? */
export function isMigrationTargetPod(vmi: unknown, podName: string | undefined): boolean {
  const migration = objectAt(vmi, 'status', 'migrationState');
  return podName !== undefined && podName !== '' && migration['targetPod'] === podName && migration['completed'] !== true && migration['failed'] !== true;
}

/**
 * The VMI with only the interfaces bound to `plugin` (rewritten as masquerade) and their networks; everything else
 * (other interfaces belong to KubeVirt or other plugins) is left out, so only ours are planned, merged and served;
 * null when no interface uses the plugin.
 */
export function pluginInterfacesAsMasquerade(vmi: unknown, plugin: string): Record<string, unknown> | null {
  if (!isObject(vmi)) throw new InputError('vmi', 'is not an object');
  const ours = listAt(vmi, 'spec', 'domain', 'devices', 'interfaces').filter(
    (iface): iface is Record<string, unknown> => isObject(iface) && objectAt(iface, 'binding')['name'] === plugin,
  );
  if (ours.length === 0) return null;
  const names = new Set(ours.map((iface) => iface['name']));
  const spec = objectAt(vmi, 'spec');
  const domain = objectAt(spec, 'domain');
  const status = objectAt(vmi, 'status');
  return {
    ...vmi,
    spec: {
      ...spec,
      domain: { ...domain, devices: { ...objectAt(domain, 'devices'), interfaces: ours.map(asMasquerade) } },
      networks: listAt(spec, 'networks').filter((network) => isObject(network) && names.has(network['name'])),
    },
    ...(isObject(vmi['status'])
      ? { status: { ...status, interfaces: listAt(status, 'interfaces').filter((entry) => isObject(entry) && names.has(entry['name'])) } }
      : {}),
  };
}
