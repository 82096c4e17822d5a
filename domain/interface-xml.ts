// Renders DomainInterfaceSpec / HostdevSpec / the passt memoryBacking as compact libvirt XML fragments (xmlbuilder2, KubeVirt's element order).

import { create } from './xml.js';
import type { DomainInterfaceSpec, HostdevSpec, PciAddress, PortForward } from './interface-spec.js';

type Builder = ReturnType<typeof create>;

/** Serializes a fragment: no XML declaration, no pretty printing. */
function serialize(doc: Builder): string {
  return doc.end({ headless: true, prettyPrint: false });
}

function pciAttrs(addr: PciAddress): Record<string, string> {
  return { type: 'pci', domain: addr.domain, bus: addr.bus, slot: addr.slot, function: addr.function };
}

function addPortForward(iface: Builder, pf: PortForward): void {
  const el = iface.ele('portForward', { proto: pf.proto });
  for (const r of pf.ranges) {
    // KubeVirt's InterfacePortForwardRange attribute order: start, end, to, exclude.
    const attrs: Record<string, string> = { start: String(r.start) };
    if (r.end !== undefined) attrs['end'] = String(r.end);
    if (r.exclude === true) attrs['exclude'] = 'yes';
    el.ele('range', attrs);
  }
}

/**
 * One `<interface>`; children in KubeVirt's `api.Interface` struct order:
 * address, source, target, model, mac, mtu, boot, link, alias, driver, rom, acpi, backend, portForward.
 */
export function renderInterface(spec: DomainInterfaceSpec): string {
  const doc = create();
  const iface = doc.ele('interface', { type: spec.type });
  if (spec.pciAddress) iface.ele('address', pciAttrs(spec.pciAddress));
  if (spec.sourceDev !== undefined) {
    iface.ele('source', { dev: spec.sourceDev });
  } else if (spec.type !== 'user') {
    // KubeVirt always emits <source>; empty for tap (ethernet). libvirt's schema rejects an empty one for type='user'.
    iface.ele('source');
  }
  if (spec.targetDev !== undefined) iface.ele('target', { dev: spec.targetDev, managed: 'no' });
  iface.ele('model', { type: spec.model });
  if (spec.mac !== undefined) iface.ele('mac', { address: spec.mac });
  if (spec.mtu !== undefined) iface.ele('mtu', { size: String(spec.mtu) });
  if (spec.bootOrder !== undefined) iface.ele('boot', { order: String(spec.bootOrder) });
  if (spec.linkState !== undefined) iface.ele('link', { state: spec.linkState });
  iface.ele('alias', { name: spec.alias });
  if (spec.driver) {
    const attrs: Record<string, string> = {};
    if (spec.driver.name !== undefined) attrs['name'] = spec.driver.name;
    if (spec.driver.queues !== undefined) attrs['queues'] = String(spec.driver.queues);
    if (spec.driver.iommu !== undefined) attrs['iommu'] = spec.driver.iommu;
    if (Object.keys(attrs).length > 0) iface.ele('driver', attrs);
  }
  if (spec.romEnabled === false) iface.ele('rom', { enabled: 'no' });
  if (spec.acpiIndex !== undefined) iface.ele('acpi', { index: String(spec.acpiIndex) });
  if (spec.backend) {
    const attrs: Record<string, string> = { type: spec.backend.type };
    if (spec.backend.logFile !== undefined) attrs['logFile'] = spec.backend.logFile;
    iface.ele('backend', attrs);
  }
  for (const pf of spec.portForwards ?? []) addPortForward(iface, pf);
  return serialize(doc);
}

/**
 * One SR-IOV `<hostdev mode='subsystem' type='pci' managed='no'>`; children in KubeVirt's
 * `api.HostDevice` struct order: source, boot, address, alias.
 *
 * The host address inside `<source>` carries no `type` attribute: KubeVirt writes `type='pci'` there,
 * libvirt's parser ignores it (and never prints it back), but libvirt's RNG schema (9.0) rejects it.
 */
export function renderHostdev(spec: HostdevSpec): string {
  const doc = create();
  const hd = doc.ele('hostdev', { mode: 'subsystem', type: 'pci', managed: 'no' });
  const src = spec.source;
  hd.ele('source').ele('address', { domain: src.domain, bus: src.bus, slot: src.slot, function: src.function });
  if (spec.bootOrder !== undefined) hd.ele('boot', { order: String(spec.bootOrder) });
  if (spec.guestPciAddress) hd.ele('address', pciAttrs(spec.guestPciAddress));
  hd.ele('alias', { name: spec.alias });
  return serialize(doc);
}

/** The domain-level shared memory vhost-user (passt) needs; memfd-backed where the architecture has it. */
export function renderMemoryBacking(options: { readonly memfd: boolean } = { memfd: true }): string {
  const doc = create();
  const mb = doc.ele('memoryBacking');
  if (options.memfd) mb.ele('source', { type: 'memfd' });
  mb.ele('access', { mode: 'shared' });
  return serialize(doc);
}

const PCI_RE = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;

/** '0000:81:01.0' → {domain:'0x0000', bus:'0x81', slot:'0x01', function:'0x0'} (hex lower-cased). Throws on other forms. */
export function parsePciAddress(s: string): PciAddress {
  const m = PCI_RE.exec(s.trim());
  if (!m) throw new Error(`invalid PCI address "${s}": expected DDDD:BB:SS.F`);
  const domain = m[1] ?? '';
  const bus = m[2] ?? '';
  const slot = m[3] ?? '';
  const fn = m[4] ?? '';
  if (parseInt(slot, 16) > 0x1f) throw new Error(`invalid PCI address "${s}": slot must be at most 0x1f`);
  return {
    domain: `0x${domain.toLowerCase()}`,
    bus: `0x${bus.toLowerCase()}`,
    slot: `0x${slot.toLowerCase()}`,
    function: `0x${fn}`,
  };
}
