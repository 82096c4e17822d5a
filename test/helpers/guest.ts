// Test helper: the tiny guest (scripts/build-guest.sh): its artifacts, a base libvirt domain XML that boots it, and its serial-console report lines.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { waitFor } from './netns.js';

export const GUEST_DIR = resolve('.cache/guest');
export const GUEST_KERNEL = resolve(GUEST_DIR, 'vmlinuz');
export const GUEST_INITRD = resolve(GUEST_DIR, 'initramfs.cpio.gz');

/** Why the guest cannot boot here, or null. */
export function guestMissing(): string | null {
  if (!existsSync(GUEST_KERNEL) || !existsSync(GUEST_INITRD)) return `no guest in ${GUEST_DIR} (run scripts/build-guest.sh)`;
  return null;
}

export interface BaseDomainOptions {
  readonly name: string;
  /** The serial console is written to this file. */
  readonly consoleFile: string;
  /** Extra kernel command line knobs for guest/init (vna.httpd=PORT, vna.fetch=URL). */
  readonly cmdline?: string;
  /** Free PCIe root ports for hotplug (q35 has no hotplug slot otherwise). */
  readonly spareRootPorts?: number;
}

/**
 * A TCG (type='qemu') q35 domain booting the tiny guest with no NIC of its own: the agent's `domain` command adds
 * the interfaces. It carries a `<qemu:commandline>` (an environment variable) so the test can check the agent keeps
 * the qemu namespace, and a `<metadata>` element libvirt does not interpret.
 */
export function baseDomainXml(opts: BaseDomainOptions): string {
  const ports = Array.from({ length: opts.spareRootPorts ?? 4 }, () => "    <controller type='pci' model='pcie-root-port'/>").join('\n');
  return `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${opts.name}</name>
  <metadata><vna:test xmlns:vna='urn:virt-net-agent:e2e'>kept</vna:test></metadata>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${GUEST_KERNEL}</kernel>
    <initrd>${GUEST_INITRD}</initrd>
    <cmdline>console=ttyS0 quiet loglevel=3 panic=-1 ${opts.cmdline ?? ''}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='pci' model='pcie-root'/>
${ports}
    <serial type='file'>
      <source path='${opts.consoleFile}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:env name='VNA_E2E' value='1'/>
  </qemu:commandline>
</domain>
`;
}

/** One "GUEST KIND k=v k=v" console line: the kind, the key=value fields, and the words without "=". */
export interface GuestLine {
  readonly kind: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly words: readonly string[];
  readonly raw: string;
}

export function parseGuestLines(console: string): GuestLine[] {
  const out: GuestLine[] = [];
  for (const rawLine of console.split(/\r?\n/)) {
    const at = rawLine.indexOf('GUEST ');
    if (at === -1) continue;
    const raw = rawLine.slice(at).trim();
    const [, kind = '', ...rest] = raw.split(/\s+/);
    const fields: Record<string, string> = {};
    const words: string[] = [];
    for (const token of rest) {
      const eq = token.indexOf('=');
      if (eq > 0) fields[token.slice(0, eq)] = token.slice(eq + 1);
      else words.push(token);
    }
    out.push({ kind, fields, words, raw });
  }
  return out;
}

export function readConsole(file: string): string {
  return existsSync(file) ? readFileSync(file, 'latin1') : '';
}

/** Waits for the first console line matching `match`; the error shows the console's GUEST lines. */
export async function waitForGuestLine(file: string, match: (line: GuestLine) => boolean, what: string, timeoutMs: number): Promise<GuestLine> {
  let found: GuestLine | undefined;
  try {
    await waitFor(async () => {
      found = parseGuestLines(readConsole(file)).find(match);
      return found !== undefined;
    }, { timeoutMs, intervalMs: 250, what });
  } catch (err) {
    const seen = parseGuestLines(readConsole(file)).map((l) => l.raw).join('\n');
    throw new Error(`${err instanceof Error ? err.message : String(err)}\nconsole GUEST lines so far:\n${seen || '(none)'}`);
  }
  if (!found) throw new Error(`internal: ${what} not found`);
  return found;
}
