// Reads a libvirt domain XML (interfaces, hostdevs) and merges rendered device fragments into it, keeping unknown elements and the qemu namespace.

import { builder, create } from './xml.js';
import type { PciAddress } from './interface-spec.js';

type Builder = ReturnType<typeof create>;
type DomNode = Builder['node'];

/** The few Element members used here (xmlbuilder2 exposes its DOM nodes as the generic Node type). */
interface ElementLike {
  readonly nodeName: string;
  getAttribute(name: string): string | null;
}

export interface DomainInterfaceEntry {
  readonly alias: string | null;
  readonly type: string;
  readonly targetDev: string | null;
  readonly mac: string | null;
  readonly linkState: string | null;
  /** The `<interface>` element, serialized compactly. */
  readonly xml: string;
}

export interface DomainHostdevEntry {
  readonly alias: string | null;
  /** `type` attribute: pci, mdev, usb, scsi… */
  readonly type: string;
  /** The host PCI address in `<source><address>` (type pci only). */
  readonly source: PciAddress | null;
  /** The guest `<address type='pci'>`, if present. */
  readonly guestPciAddress: PciAddress | null;
  readonly bootOrder: number | null;
  /** The `<hostdev>` element, serialized compactly. */
  readonly xml: string;
}

const ELEMENT_NODE = 1;
const PREDEFINED_ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)/;
const NAME = '[A-Za-z_][\\w.:-]*';
const ATTR_RE = new RegExp(`(${NAME})\\s*=\\s*(?:"([^"<]*)"|'([^'<]*)')`, 'g');
/** Sticky: matched at `lastIndex`. */
const TAG_RE = new RegExp(`<(/?)(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"<]*"|'[^'<]*'))*)\\s*(/?)>`, 'y');

/**
 * xmlbuilder2's parser is lenient (it accepts `<a></b>`, drops duplicate attributes, turns "" into a document
 * without an element). This scan rejects what libvirt's parser would reject before xmlbuilder2 builds the tree:
 * mismatched or unclosed tags, several roots, text outside the root, duplicate attributes, DOCTYPE
 * and entity references other than the predefined and numeric ones.
 */
function assertWellFormed(xml: string, what: string): void {
  const fail = (msg: string, at: number): never => {
    throw new Error(`${what}: malformed XML (${msg}) at offset ${at}`);
  };
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  const checkText = (text: string, at: number): void => {
    if (PREDEFINED_ENTITY.test(text)) fail('undefined entity or bare "&"', at);
    if (stack.length === 0 && text.trim() !== '') fail('text outside the root element', at);
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt === -1 ? xml.length : lt;
    if (textEnd > i) checkText(xml.slice(i, textEnd), i);
    if (lt === -1) break;
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt + 4);
      if (end === -1) fail('unterminated comment', lt);
      i = end + 3;
    } else if (xml.startsWith('<![CDATA[', lt)) {
      if (stack.length === 0) fail('CDATA outside the root element', lt);
      const end = xml.indexOf(']]>', lt + 9);
      if (end === -1) fail('unterminated CDATA section', lt);
      i = end + 3;
    } else if (xml.startsWith('<?', lt)) {
      const end = xml.indexOf('?>', lt + 2);
      if (end === -1) fail('unterminated processing instruction', lt);
      i = end + 2;
    } else if (xml.startsWith('<!', lt)) {
      fail('DOCTYPE and markup declarations are not accepted', lt);
    } else {
      TAG_RE.lastIndex = lt;
      const m = TAG_RE.exec(xml);
      if (!m) fail('invalid tag', lt);
      const [whole, closing, name, attrs, selfClosing] = m as RegExpExecArray;
      if (closing) {
        if (attrs || selfClosing) fail(`invalid closing tag </${name}>`, lt);
        const open = stack.pop();
        if (open !== name) fail(open === undefined ? `unexpected </${name}>` : `</${name}> closes <${open}>`, lt);
      } else {
        if (stack.length === 0 && ++roots > 1) fail('more than one root element', lt);
        const seen = new Set<string>();
        for (const a of (attrs ?? '').matchAll(ATTR_RE)) {
          const attrName = a[1] ?? '';
          if (seen.has(attrName)) fail(`duplicate attribute ${attrName} on <${name}>`, lt);
          seen.add(attrName);
          if (PREDEFINED_ENTITY.test(a[2] ?? a[3] ?? '')) fail('undefined entity or bare "&" in an attribute', lt);
        }
        if (!selfClosing) stack.push(name ?? '');
      }
      i = lt + (whole ?? '').length;
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1] ?? ''}> is not closed`, xml.length);
  if (roots === 0) fail('no root element', 0);
}

function parse(xml: string, rootName: string, what: string, keepWhitespace: boolean): Builder {
  assertWellFormed(xml, what);
  const doc = create({ skipWhitespaceOnlyText: !keepWhitespace }, xml);
  const root = doc.root();
  if (root.node.nodeName !== rootName) {
    throw new Error(`${what}: expected a <${rootName}> root element, got <${root.node.nodeName}>`);
  }
  return doc;
}

function asElement(node: DomNode): ElementLike | null {
  return node.nodeType === ELEMENT_NODE ? (node as unknown as ElementLike) : null;
}

/** Direct child elements of `node`, optionally only those with the given (qualified) name. */
function childElements(node: DomNode, name?: string): DomNode[] {
  const out: DomNode[] = [];
  for (let child = node.firstChild; child !== null; child = child.nextSibling) {
    const el = asElement(child);
    if (el && (name === undefined || el.nodeName === name)) out.push(child);
  }
  return out;
}

function firstChild(node: DomNode, name: string): DomNode | null {
  return childElements(node, name)[0] ?? null;
}

function attr(node: DomNode | null, name: string): string | null {
  if (!node) return null;
  return asElement(node)?.getAttribute(name) ?? null;
}

function childAttr(node: DomNode, child: string, name: string): string | null {
  return attr(firstChild(node, child), name);
}

function aliasOf(node: DomNode): string | null {
  return childAttr(node, 'alias', 'name');
}

function pciOf(node: DomNode | null): PciAddress | null {
  if (!node) return null;
  const domain = attr(node, 'domain');
  const bus = attr(node, 'bus');
  const slot = attr(node, 'slot');
  const fn = attr(node, 'function');
  if (domain === null || bus === null || slot === null || fn === null) return null;
  return { domain, bus, slot, function: fn };
}

function serializeNode(node: DomNode): string {
  return builder(node).toString({ headless: true, prettyPrint: false });
}

function devicesOf(doc: Builder): DomNode | null {
  return firstChild(doc.root().node, 'devices');
}

/** The `<interface>` elements of a domain's `<devices>`, in document order. */
export function listDomainInterfaces(domainXml: string): DomainInterfaceEntry[] {
  const doc = parse(domainXml, 'domain', 'domain XML', false);
  const devices = devicesOf(doc);
  if (!devices) return [];
  return childElements(devices, 'interface').map((n) => ({
    alias: aliasOf(n),
    type: attr(n, 'type') ?? '',
    targetDev: childAttr(n, 'target', 'dev'),
    mac: childAttr(n, 'mac', 'address'),
    linkState: childAttr(n, 'link', 'state'),
    xml: serializeNode(n),
  }));
}

/** The `<hostdev>` elements of a domain's `<devices>`, in document order. */
export function listDomainHostdevs(domainXml: string): DomainHostdevEntry[] {
  const doc = parse(domainXml, 'domain', 'domain XML', false);
  const devices = devicesOf(doc);
  if (!devices) return [];
  return childElements(devices, 'hostdev').map((n) => {
    const type = attr(n, 'type') ?? '';
    const source = firstChild(n, 'source');
    const guest = firstChild(n, 'address');
    const boot = childAttr(n, 'boot', 'order');
    return {
      alias: aliasOf(n),
      type,
      source: type === 'pci' && source ? pciOf(firstChild(source, 'address')) : null,
      guestPciAddress: guest && attr(guest, 'type') === 'pci' ? pciOf(guest) : null,
      bootOrder: boot === null ? null : Number(boot),
      xml: serializeNode(n),
    };
  });
}

/** Hostdevs keyed by `<alias name>` (hostdevs without an alias are left out). */
export function hostdevsByAlias(domainXml: string): Map<string, DomainHostdevEntry> {
  const out = new Map<string, DomainHostdevEntry>();
  for (const h of listDomainHostdevs(domainXml)) if (h.alias !== null) out.set(h.alias, h);
  return out;
}

/** Deep-copies `node` (from another document) into `doc`, returning the new, still detached node. */
function importInto(doc: Builder, node: DomNode): DomNode {
  const owner = (doc.node.ownerDocument ?? doc.node) as unknown as { importNode(n: DomNode, deep: boolean): DomNode };
  return owner.importNode(node, true);
}

/** Replaces the same-named child of `parent` with the same alias, or appends. */
function upsertByAlias(doc: Builder, parent: DomNode, fragmentXml: string, name: string): void {
  const fragment = parse(fragmentXml, name, `<${name}> fragment`, false);
  const alias = aliasOf(fragment.root().node);
  const imported = importInto(doc, fragment.root().node);
  const existing = alias === null ? undefined : childElements(parent, name).find((n) => aliasOf(n) === alias);
  if (existing) parent.replaceChild(imported, existing);
  else parent.appendChild(imported);
}

/** libvirt's own order of the domain children that precede `<memoryBacking>`. */
const BEFORE_MEMORY_BACKING = ['name', 'uuid', 'genid', 'title', 'description', 'metadata', 'maxMemory', 'memory', 'currentMemory', 'blkiotune', 'memtune'];

function setMemoryBacking(doc: Builder, fragmentXml: string): void {
  const root = doc.root().node;
  const fragment = parse(fragmentXml, 'memoryBacking', '<memoryBacking> fragment', false);
  const existing = firstChild(root, 'memoryBacking');
  if (!existing) {
    const imported = importInto(doc, fragment.root().node);
    const before = childElements(root).filter((n) => BEFORE_MEMORY_BACKING.includes(n.nodeName));
    const anchor = before[before.length - 1];
    root.insertBefore(imported, anchor ? anchor.nextSibling : root.firstChild);
    return;
  }
  // Merge child by child so e.g. an existing <hugepages> survives; the new children win.
  for (const child of childElements(fragment.root().node)) {
    const imported = importInto(doc, child);
    const same = firstChild(existing, child.nodeName);
    if (same) existing.replaceChild(imported, same);
    else existing.appendChild(imported);
  }
}

/**
 * Returns `domainXml` with each `<interface>`/`<hostdev>` fragment replacing the existing element of the same kind
 * with the same `<alias name>`, or appended to `<devices>` (created if missing); with `memoryBackingXml` merged into
 * `<memoryBacking>` (its children replace same-named ones) when given. Everything else (unknown elements,
 * comments, whitespace, the qemu namespace and `<qemu:commandline>`) is kept as is. Throws on malformed input.
 */
export function mergeDevices(
  domainXml: string,
  interfacesXml: readonly string[],
  hostdevsXml: readonly string[],
  memoryBackingXml: string | null,
): string {
  const doc = parse(domainXml, 'domain', 'domain XML', true);
  let devices = devicesOf(doc);
  if (!devices) {
    doc.root().ele('devices');
    devices = devicesOf(doc);
    if (!devices) throw new Error('internal: <devices> was not created');
  }
  for (const x of interfacesXml) upsertByAlias(doc, devices, x, 'interface');
  for (const x of hostdevsXml) upsertByAlias(doc, devices, x, 'hostdev');
  if (memoryBackingXml !== null) setMemoryBacking(doc, memoryBackingXml);
  const hadDeclaration = /^\s*<\?xml[\s?]/.test(domainXml);
  return doc.end({ headless: !hadDeclaration, prettyPrint: false });
}
