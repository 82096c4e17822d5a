// Sets an `<interface>` element's link state (for updateDeviceFlags): `<link state='down'/>` or no `<link>`.
import { create } from './xml.js';

/** Children that come after `<link>` in KubeVirt's order; a new `<link>` goes before the first of them. */
const AFTER_LINK = ['filterref', 'alias', 'driver', 'rom', 'acpi', 'backend', 'portForward'];

export function setLinkState(interfaceXml: string, state: 'up' | 'down'): string {
  const doc = create(interfaceXml);
  const root = doc.root().node as unknown as Element;
  for (const link of Array.from(root.childNodes).filter((child) => child.nodeName === 'link')) root.removeChild(link);
  if (state === 'down') {
    const link = root.ownerDocument.createElement('link');
    link.setAttribute('state', 'down');
    const before = Array.from(root.childNodes).find((child) => AFTER_LINK.includes(child.nodeName)) ?? null;
    root.insertBefore(link, before);
  }
  return doc.end({ headless: true });
}
