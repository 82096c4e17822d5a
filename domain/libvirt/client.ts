// A small libvirt client (connect, version, define, lookup, XML, start/stop, attach/detach/update device flags) over libvirt.so.0.
//
// Why not only @unraid/libvirt: its native binding (2.2.1) has no virDomainAttachDeviceFlags, DetachDeviceFlags,
// UpdateDeviceFlags nor virConnectGetLibVersion, and it is a devDependency. koffi (a runtime dependency) calls the
// C API directly; every call runs on koffi's worker threads (`.async`), so a slow libvirtd (the first connection
// probes QEMU for ~8 s) never blocks the event loop. Errors are read from the connection (virConnGetLastError),
// not from thread-local storage, because the failing call ran on another thread; calls on one connection are
// serialized so that error belongs to the call that failed.
import koffi from 'koffi';
import { AgentError } from '../../agent/plan/errors.js';
import { decodeVersion, type LibvirtVersion } from '../libvirt-version.js';

/** virDomainModificationImpact / virDomainDeviceModifyFlags. */
export const AFFECT_LIVE = 1;
export const AFFECT_CONFIG = 2;

export interface DomainHandle {
  readonly name: string;
}

export interface LibvirtClient {
  readonly uri: string;
  /** The libvirt version of the daemon behind the connection (virConnectGetLibVersion). */
  libVersion(): Promise<LibvirtVersion>;
  defineXml(xml: string): Promise<DomainHandle>;
  lookup(name: string): Promise<DomainHandle>;
  /** The domain XML; `inactive` gives the persistent config instead of the live one. */
  xmlDesc(domain: DomainHandle, inactive?: boolean): Promise<string>;
  start(domain: DomainHandle): Promise<void>;
  destroy(domain: DomainHandle): Promise<void>;
  undefine(domain: DomainHandle): Promise<void>;
  isActive(domain: DomainHandle): Promise<boolean>;
  attachDevice(domain: DomainHandle, xml: string, flags: number): Promise<void>;
  detachDevice(domain: DomainHandle, xml: string, flags: number): Promise<void>;
  updateDevice(domain: DomainHandle, xml: string, flags: number): Promise<void>;
  close(): Promise<void>;
}

/** A libvirt call failed: field is the operation (e.g. "libvirt attach-device"), message libvirt's own. */
export class LibvirtError extends AgentError {
  constructor(operation: string, message: string) {
    super(`libvirt ${operation}`, message, 1);
    this.name = 'LibvirtError';
  }
}

type AsyncFn = { async: (...args: unknown[]) => void } & ((...args: unknown[]) => unknown);

interface Api {
  open: AsyncFn;
  close: AsyncFn;
  libVersion: AsyncFn;
  define: AsyncFn;
  lookup: AsyncFn;
  xmlDesc: AsyncFn;
  create: AsyncFn;
  destroy: AsyncFn;
  undefine: AsyncFn;
  isActive: AsyncFn;
  attach: AsyncFn;
  detach: AsyncFn;
  update: AsyncFn;
  domainFree: AsyncFn;
  connLastError: (conn: unknown) => unknown;
  connResetError: (conn: unknown) => void;
  lastErrorMessage: () => string;
  errorType: ReturnType<typeof koffi.struct>;
}

let api: Api | undefined;
/** Kept referenced for the life of the process: libvirt holds the pointer. */
let silentHandler: unknown;

function loadApi(): Api {
  if (api) return api;
  const lib = koffi.load('libvirt.so.0');
  const libc = koffi.load('libc.so.6');
  const free = libc.func('void free(void *ptr)');
  const heapStr = koffi.disposable('vna_virHeapStr', 'str', free as (...args: unknown[]) => unknown);
  koffi.opaque('virConnect');
  koffi.opaque('virDomain');
  const errorType = koffi.struct('vna_virErrorHead', { code: 'int', domain: 'int', message: 'char *' });
  const f = (decl: string): AsyncFn => lib.func(decl) as unknown as AsyncFn;
  // libvirt prints every error on stderr unless an error handler is set; ours are reported as one line instead.
  const errorFunc = koffi.proto('void vna_virErrorFunc(void *userData, void *error)');
  const setErrorFunc = lib.func('void virSetErrorFunc(void *userData, vna_virErrorFunc *handler)') as (u: null, h: unknown) => void;
  silentHandler = koffi.register(() => undefined, koffi.pointer(errorFunc));
  setErrorFunc(null, silentHandler);
  api = {
    open: f('virConnect *virConnectOpen(const char *name)'),
    close: f('int virConnectClose(virConnect *conn)'),
    libVersion: f('int virConnectGetLibVersion(virConnect *conn, _Out_ unsigned long *version)'),
    define: f('virDomain *virDomainDefineXML(virConnect *conn, const char *xml)'),
    lookup: f('virDomain *virDomainLookupByName(virConnect *conn, const char *name)'),
    xmlDesc: lib.func('virDomainGetXMLDesc', heapStr, ['virDomain *', 'unsigned int']) as unknown as AsyncFn,
    create: f('int virDomainCreate(virDomain *dom)'),
    destroy: f('int virDomainDestroy(virDomain *dom)'),
    undefine: f('int virDomainUndefine(virDomain *dom)'),
    isActive: f('int virDomainIsActive(virDomain *dom)'),
    attach: f('int virDomainAttachDeviceFlags(virDomain *dom, const char *xml, unsigned int flags)'),
    detach: f('int virDomainDetachDeviceFlags(virDomain *dom, const char *xml, unsigned int flags)'),
    update: f('int virDomainUpdateDeviceFlags(virDomain *dom, const char *xml, unsigned int flags)'),
    domainFree: f('int virDomainFree(virDomain *dom)'),
    connLastError: lib.func('void *virConnGetLastError(virConnect *conn)') as (conn: unknown) => unknown,
    connResetError: lib.func('void virConnResetLastError(virConnect *conn)') as (conn: unknown) => void,
    lastErrorMessage: lib.func('const char *virGetLastErrorMessage()') as () => string,
    errorType,
  };
  return api;
}

function call(fn: AsyncFn, args: readonly unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, result: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(result)));
  });
}

interface DomainRef extends DomainHandle {
  readonly ptr: unknown;
}

class FfiClient implements LibvirtClient {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly domains: DomainRef[] = [];
  private closed = false;

  constructor(
    readonly uri: string,
    private readonly conn: unknown,
    private readonly lib: Api,
  ) {}

  /** Runs one libvirt call after the previous ones; a failure (-1 / NULL) becomes a LibvirtError with libvirt's message. */
  private run<T>(operation: string, fn: AsyncFn, args: readonly unknown[], failed: (result: unknown) => boolean): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.closed) throw new LibvirtError(operation, 'connection is closed');
      this.lib.connResetError(this.conn);
      const result = await call(fn, args);
      if (failed(result)) throw new LibvirtError(operation, this.lastError());
      return result as T;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private lastError(): string {
    const ptr = this.lib.connLastError(this.conn);
    if (ptr === null) return 'failed (libvirt gave no message)';
    const head = koffi.decode(ptr, this.lib.errorType) as { message: string | null };
    return head.message ?? 'failed (libvirt gave no message)';
  }

  private ref(domain: DomainHandle): unknown {
    const found = this.domains.find((d) => d === domain);
    if (!found) throw new LibvirtError('domain', `${domain.name}: not a domain of this connection`);
    return found.ptr;
  }

  private keep(name: string, ptr: unknown): DomainHandle {
    const ref: DomainRef = { name, ptr };
    this.domains.push(ref);
    return ref;
  }

  async libVersion(): Promise<LibvirtVersion> {
    const out = [0];
    await this.run<number>('version', this.lib.libVersion, [this.conn, out], (r) => r !== 0);
    return decodeVersion(Number(out[0]));
  }

  async defineXml(xml: string): Promise<DomainHandle> {
    const ptr = await this.run<unknown>('define', this.lib.define, [this.conn, xml], (r) => r === null);
    const name = /<name>\s*([^<]*?)\s*<\/name>/.exec(xml)?.[1] ?? '';
    return this.keep(name, ptr);
  }

  async lookup(name: string): Promise<DomainHandle> {
    const ptr = await this.run<unknown>('lookup', this.lib.lookup, [this.conn, name], (r) => r === null);
    return this.keep(name, ptr);
  }

  xmlDesc(domain: DomainHandle, inactive = false): Promise<string> {
    // VIR_DOMAIN_XML_INACTIVE = 2
    return this.run<string>('get-xml', this.lib.xmlDesc, [this.ref(domain), inactive ? 2 : 0], (r) => r === null);
  }

  async start(domain: DomainHandle): Promise<void> {
    await this.run('start', this.lib.create, [this.ref(domain)], (r) => r !== 0);
  }

  async destroy(domain: DomainHandle): Promise<void> {
    await this.run('destroy', this.lib.destroy, [this.ref(domain)], (r) => r !== 0);
  }

  async undefine(domain: DomainHandle): Promise<void> {
    await this.run('undefine', this.lib.undefine, [this.ref(domain)], (r) => r !== 0);
  }

  async isActive(domain: DomainHandle): Promise<boolean> {
    const r = await this.run<number>('is-active', this.lib.isActive, [this.ref(domain)], (x) => Number(x) < 0);
    return r === 1;
  }

  async attachDevice(domain: DomainHandle, xml: string, flags: number): Promise<void> {
    await this.run('attach-device', this.lib.attach, [this.ref(domain), xml, flags], (r) => r !== 0);
  }

  async detachDevice(domain: DomainHandle, xml: string, flags: number): Promise<void> {
    await this.run('detach-device', this.lib.detach, [this.ref(domain), xml, flags], (r) => r !== 0);
  }

  async updateDevice(domain: DomainHandle, xml: string, flags: number): Promise<void> {
    await this.run('update-device', this.lib.update, [this.ref(domain), xml, flags], (r) => r !== 0);
  }

  async close(): Promise<void> {
    await this.queue;
    if (this.closed) return;
    this.closed = true;
    for (const d of this.domains.splice(0)) await call(this.lib.domainFree, [d.ptr]);
    await call(this.lib.close, [this.conn]);
  }
}

/** Opens a connection (e.g. "qemu:///system", "qemu:///system?socket=/path", "test:///default"). */
export async function connectLibvirt(uri: string): Promise<LibvirtClient> {
  let lib: Api;
  try {
    lib = loadApi();
  } catch (err) {
    throw new LibvirtError('connect', `cannot load libvirt.so.0 (install libvirt0): ${err instanceof Error ? err.message : String(err)}`);
  }
  const conn = await call(lib.open, [uri]);
  if (conn === null) {
    // The error was recorded on the worker thread that ran the call; repeat it here to read the message.
    const again = lib.open(uri);
    if (again !== null) return new FfiClient(uri, again, lib);
    throw new LibvirtError('connect', `${uri}: ${lib.lastErrorMessage()}`);
  }
  return new FfiClient(uri, conn, lib);
}
