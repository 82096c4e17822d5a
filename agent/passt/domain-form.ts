// The domain form for agent-managed passt (libvirt < 11.1): the passt <interface> becomes qemu "-netdev stream" + "-device" args in <qemu:commandline>.
import { builder, create } from '../../domain/xml.js';
import { InputError } from '../plan/errors.js';

export const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/**
 * How the guest attaches to passt: vhost-user with <backend type='passt'> (KubeVirt's form, libvirt >= 11.1),
 * `type='user'` with the passt backend (libvirt 9.x-11.0, the form of KubeVirt's discontinued core passt), or the
 * agent-managed passt through qemu's `-netdev stream` (any libvirt; `virt-net-agent passt` runs passt).
 */
export type PasstAttachment = 'vhostuser' | 'user' | 'agent-stream';

/**
 * The form a libvirt version runs. 9.0.0 is left out of `user` on purpose: Debian 12's libvirt 9.0.0 rejects
 * <backend type='passt'/> ("Invalid value for attribute 'type' in element 'backend'", libvirt issue 462, seen here).
 */
export function passtAttachmentFor(version: { readonly major: number; readonly minor: number }): PasstAttachment {
  if (version.major > 11 || (version.major === 11 && version.minor >= 1)) return 'vhostuser';
  if (version.major > 9 || (version.major === 9 && version.minor >= 1)) return 'user';
  return 'agent-stream';
}

/**
 * Rewrites every vhost-user passt `<interface>` of a domain to `type='user'` (libvirt starts passt itself; no shared
 * memory needed). Model, MAC, alias, PCI address, boot order, link state, backend log file and port forwards are kept;
 * the vhost-user multiqueue `<driver>` is dropped (type='user' has one queue). Everything else is untouched.
 */
export function toUserPasst(domainXml: string): string {
  const doc = create({ skipWhitespaceOnlyText: false }, domainXml);
  const passt = passtInterfaces(doc.root().node);
  if (passt.length === 0) return domainXml;
  for (const iface of passt) {
    (iface as unknown as { setAttribute(n: string, v: string): void }).setAttribute('type', 'user');
    const driver = child(iface, 'driver');
    if (driver !== undefined) iface.removeChild(driver);
  }
  return serializeAs(doc, domainXml);
}

type Node = ReturnType<ReturnType<typeof create>['root']>['node'];

function elementChildren(node: Node): Node[] {
  const out: Node[] = [];
  for (let c = node.firstChild; c !== null; c = c.nextSibling) if (c.nodeType === 1) out.push(c);
  return out;
}

function attr(node: Node | undefined, name: string): string | null {
  return node === undefined ? null : ((node as unknown as { getAttribute(n: string): string | null }).getAttribute(name) ?? null);
}

function child(node: Node, name: string): Node | undefined {
  return elementChildren(node).find((c) => c.nodeName === name);
}

/** The `<interface>` elements of a domain's `<devices>` that use `<backend type='passt'>`. */
function passtInterfaces(domain: Node): Node[] {
  const devices = child(domain, 'devices');
  return devices === undefined ? [] : elementChildren(devices).filter((n) => n.nodeName === 'interface' && attr(child(n, 'backend'), 'type') === 'passt');
}

/** The edited document, with an XML declaration only if the original had one. */
function serializeAs(doc: ReturnType<typeof create>, originalXml: string): string {
  const hadDeclaration = /^\s*<\?xml[\s?]/.test(originalXml);
  return doc.end({ headless: !hadDeclaration, prettyPrint: false });
}

/** virtio model names → qemu's virtio-net device. */
const DEVICE: Readonly<Record<string, string>> = {
  virtio: 'virtio-net-pci',
  'virtio-non-transitional': 'virtio-net-pci-non-transitional',
  'virtio-transitional': 'virtio-net-pci-transitional',
};

/** The qemu arguments that attach one passt interface (by its XML) to passt's unix socket. */
export function streamArgs(interfaceXml: string, socketPath: string): string[] {
  const root = create(interfaceXml).root().node;
  const alias = attr(child(root, 'alias'), 'name');
  if (alias === null) throw new InputError('interface', 'the passt <interface> has no <alias name>');
  const model = attr(child(root, 'model'), 'type') ?? 'virtio';
  const device = DEVICE[model];
  if (device === undefined) throw new InputError(alias, `model ${model} cannot attach to passt through qemu's -netdev stream (virtio only)`);
  if (socketPath.includes(',')) throw new InputError('--passt-socket', 'a path with "," cannot be passed in a qemu option');
  const mac = attr(child(root, 'mac'), 'address');
  return [
    '-netdev',
    `stream,id=${alias},server=off,addr.type=unix,addr.path=${socketPath}`,
    '-device',
    `${device},netdev=${alias},id=${alias}-nic${mac !== null ? `,mac=${mac}` : ''}`,
  ];
}

/**
 * Rewrites a domain for agent-managed passt: each `<interface>` with `<backend type='passt'>` is removed from
 * `<devices>` and attached with `-netdev stream` to `socketPath` through `<qemu:commandline>` (appended to an
 * existing one; the qemu namespace is declared on `<domain>`). Everything else is kept.
 */
export function attachPasstByStream(domainXml: string, socketPath: string): string {
  const doc = create({ skipWhitespaceOnlyText: false }, domainXml);
  const root = doc.root();
  const passt = passtInterfaces(root.node);
  if (passt.length === 0) return domainXml;
  if (passt.length > 1) throw new InputError('domainXML', 'more than one passt interface; agent-managed passt serves one');
  const iface = passt[0]!;
  const args = streamArgs(builder(iface).toString({ headless: true, prettyPrint: false }), socketPath);
  iface.parentNode?.removeChild(iface);

  const element = root.node as unknown as { getAttribute(n: string): string | null; setAttributeNS(ns: string, n: string, v: string): void };
  const declared = element.getAttribute('xmlns:qemu');
  if (declared !== null && declared !== QEMU_NS) throw new InputError('domainXML', `the "qemu" prefix is bound to ${declared}`);
  if (declared === null) element.setAttributeNS(XMLNS_NS, 'xmlns:qemu', QEMU_NS);
  let commandline = child(root.node, 'qemu:commandline');
  const ownerDoc = (root.node.ownerDocument ?? root.node) as unknown as { createElementNS(ns: string, n: string): Node };
  if (commandline === undefined) {
    commandline = ownerDoc.createElementNS(QEMU_NS, 'qemu:commandline');
    root.node.appendChild(commandline);
  }
  for (const value of args) {
    const arg = ownerDoc.createElementNS(QEMU_NS, 'qemu:arg');
    (arg as unknown as { setAttribute(n: string, v: string): void }).setAttribute('value', value);
    commandline.appendChild(arg);
  }
  return serializeAs(doc, domainXml);
}
