// Test helpers: wrap device fragments into a minimal domain, validate it with virt-xml-validate, and define it on libvirt's test:///default driver.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as libvirt from '@unraid/libvirt';
import { create } from 'xmlbuilder2';

const execFileAsync = promisify(execFile);

export type TestArch = 'x86_64' | 'aarch64' | 's390x';

export interface DomainDevices {
  readonly interfaces: readonly string[];
  readonly hostdevs: readonly string[];
  readonly memoryBacking: string | null;
}

/** Machine type per arch; test:///default checks neither, the schema only its syntax. */
const MACHINE: Record<TestArch, string> = { x86_64: 'q35', aarch64: 'virt', s390x: 's390-ccw-virtio' };

let nameCounter = 0;
function uniqueName(): string {
  nameCounter += 1;
  return `vna-test-${process.pid}-${nameCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A complete minimal domain (type 'qemu': both the schema and test:///default accept it; the test driver also
 * accepts 'kvm' and 'test') containing the given fragments. Each call gets a unique `<name>`.
 */
export function wrapInDomain(devices: DomainDevices, opts?: { arch?: TestArch }): string {
  const arch = opts?.arch ?? 'x86_64';
  const doc = create();
  const domain = doc.ele('domain', { type: 'qemu' });
  domain.ele('name').txt(uniqueName());
  domain.ele('memory', { unit: 'KiB' }).txt('131072');
  if (devices.memoryBacking !== null) domain.import(create(devices.memoryBacking));
  domain.ele('vcpu').txt('1');
  domain.ele('os').ele('type', { arch, machine: MACHINE[arch] }).txt('hvm');
  const devs = domain.ele('devices');
  for (const x of devices.interfaces) devs.import(create(x));
  for (const x of devices.hostdevs) devs.import(create(x));
  return doc.end({ headless: true, prettyPrint: false });
}

/** Runs `virt-xml-validate <tmpfile> domain` (libvirt's RNG schema); ok when it exits 0. */
export async function validateWithSchema(domainXml: string): Promise<{ ok: boolean; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'vna-xml-'));
  const file = join(dir, 'domain.xml');
  try {
    await writeFile(file, domainXml);
    try {
      const { stdout, stderr } = await execFileAsync('virt-xml-validate', [file, 'domain']);
      return { ok: true, output: `${stdout}${stderr}` };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message?: string };
      return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || (e.message ?? String(err)) };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

let connection: Promise<libvirt.Hypervisor> | null = null;

function hypervisor(): Promise<libvirt.Hypervisor> {
  if (!connection) {
    const hv = new libvirt.Hypervisor({ uri: 'test:///default' });
    connection = hv.connectOpen().then(() => hv);
    connection.catch(() => {
      connection = null;
    });
  }
  return connection;
}

/** Gives the domain a fresh unique `<name>` and drops any `<uuid>`, so repeated defines never collide. */
function withUniqueName(domainXml: string): string {
  const doc = create(domainXml);
  const root = doc.root();
  const name = root.find((n) => n.node.nodeName === 'name', false, false);
  if (name) name.remove();
  const uuid = root.find((n) => n.node.nodeName === 'uuid', false, false);
  if (uuid) uuid.remove();
  root.ele('name').txt(uniqueName());
  return doc.end({ headless: true, prettyPrint: false });
}

/**
 * Runs libvirt's real domain parser (test:///default, in-process, no daemon): define, read the XML back, undefine.
 * The domain is renamed to a unique name first. Uses one shared connection; call closeLibvirt() in afterAll.
 */
export async function defineWithLibvirt(domainXml: string): Promise<{ ok: boolean; error?: string; xml?: string }> {
  const hv = await hypervisor();
  let dom: libvirt.Domain;
  try {
    dom = await hv.domainDefineXML(withUniqueName(domainXml));
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  try {
    const xml = await hv.domainGetXMLDesc(dom);
    return { ok: true, xml };
  } finally {
    await hv.domainUndefine(dom);
  }
}

/** Closes the shared test:///default connection (if one was opened). */
export async function closeLibvirt(): Promise<void> {
  const pending = connection;
  connection = null;
  if (!pending) return;
  const hv = await pending.catch(() => null);
  if (hv) await hv.connectClose();
}

/** The installed libvirt version from `virsh --version`, e.g. [9, 0, 0]. */
export async function libvirtVersion(): Promise<readonly [number, number, number]> {
  const { stdout } = await execFileAsync('virsh', ['--version']);
  const [major = 0, minor = 0, micro = 0] = stdout.trim().split('.').map((p) => Number(p));
  return [major, minor, micro];
}

/** True when the installed libvirt is at least the given version. */
export async function libvirtAtLeast(major: number, minor: number): Promise<boolean> {
  const [ma, mi] = await libvirtVersion();
  return ma > major || (ma === major && mi >= minor);
}
