// Which libvirt version each planned device needs, and a check that refuses (one line per interface) what the connected libvirt cannot run.
import { create } from './xml.js';
import { formatVersion, versionAtLeast, type LibvirtVersion } from './libvirt-version.js';

export interface DeviceRequirement {
  /** The interface's alias (ua-<network name>), or its type when it has none. */
  readonly device: string;
  readonly needs: { readonly major: number; readonly minor: number };
  readonly why: string;
}

interface InterfaceFacts {
  readonly type: string;
  readonly alias: string | null;
  readonly backend: string | null;
}

function factsOf(interfaceXml: string): InterfaceFacts {
  const root = create(interfaceXml).root();
  const obj = root.toObject() as { interface?: Record<string, unknown> };
  const iface = obj.interface ?? {};
  const attr = (node: unknown, name: string): string | null => {
    if (typeof node !== 'object' || node === null) return null;
    const value = (node as Record<string, unknown>)[`@${name}`];
    return typeof value === 'string' ? value : null;
  };
  return { type: attr(iface, 'type') ?? '', alias: attr(iface['alias'], 'name'), backend: attr(iface['backend'], 'type') };
}

/**
 * The minimum libvirt version per rendered `<interface>` fragment, from libvirt's documentation:
 * vhost-user with the passt backend (KubeVirt's passt binding) since 11.1; `type='user'` with the passt backend
 * since 9.0 (Debian 12's 9.0.0 still rejects it: gitlab.com/libvirt/libvirt/-/issues/462).
 */
export function deviceRequirements(interfacesXml: readonly string[]): DeviceRequirement[] {
  const out: DeviceRequirement[] = [];
  for (const xml of interfacesXml) {
    const facts = factsOf(xml);
    const device = facts.alias ?? `<interface type='${facts.type}'>`;
    if (facts.backend === 'passt' && facts.type === 'vhostuser') {
      out.push({ device, needs: { major: 11, minor: 1 }, why: "vhost-user with <backend type='passt'/>" });
    } else if (facts.backend === 'passt') {
      out.push({ device, needs: { major: 9, minor: 0 }, why: "<backend type='passt'/>" });
    }
  }
  return out;
}

/** One line per device the given libvirt cannot run, naming the network (alias ua-<name>) and both versions. */
export function unsupportedDevices(interfacesXml: readonly string[], version: LibvirtVersion): string[] {
  return deviceRequirements(interfacesXml)
    .filter((r) => !versionAtLeast(version, r.needs.major, r.needs.minor))
    .map((r) => {
      const network = r.device.startsWith('ua-') ? `interface "${r.device.slice(3)}"` : r.device;
      return `${network}: ${r.why} needs libvirt >= ${r.needs.major}.${r.needs.minor}, the connected libvirt is ${formatVersion(version)}`;
    });
}
