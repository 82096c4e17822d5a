// Per-attachment state of the plugin: one folder per (network name, container id, interface) holding what ADD recorded.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeVirtConfig } from '../plan/vmi-types.js';
import { CNI_CODES, CniSpecError } from './errors.js';

/** What ADD recorded for an attachment (attachment.json beside the agent's state.json). */
export interface AttachmentRecord {
  readonly version: 1;
  readonly network: string;
  readonly containerId: string;
  readonly ifname: string;
  readonly netns: string;
  readonly role: 'chained' | 'binding-plugin';
  readonly binding: string;
  /** The VMI the plan was computed from (built from the config, or read for the binding-plugin role). */
  readonly vmi: unknown;
  readonly kubevirtConfig: KubeVirtConfig;
  readonly spoofProtection: boolean;
  /** The phase ADD planned (absent: start); role 2 plans migration-target for a migration's target pod. */
  readonly phase?: 'start' | 'migration-target';
  /** Pod sysctls ADD added beyond the binding's (role 2: the unprivileged sidecar's DHCP ports). */
  readonly podSysctls?: Readonly<Record<string, string>>;
  /** The result ADD printed. */
  readonly result: Record<string, unknown>;
}

/** The folder name of an attachment (also the VMI uid the agent keys its state dir on). */
export function attachmentKey(network: string, containerId: string, ifname: string): string {
  return `${network}_${containerId}_${ifname}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function attachmentDir(root: string, key: string): string {
  return join(root, key);
}

const RECORD = 'attachment.json';

export function readAttachment(dir: string): AttachmentRecord | null {
  let text: string;
  try {
    text = readFileSync(join(dir, RECORD), 'utf8');
  } catch {
    return null;
  }
  try {
    const record = JSON.parse(text) as AttachmentRecord;
    if (record.version !== 1) throw new Error(`unknown version ${String(record.version)}`);
    return record;
  } catch (error) {
    throw new CniSpecError(CNI_CODES.ioFailure, 'stateDir', `corrupt ${join(dir, RECORD)}: ${(error as Error).message}`);
  }
}

export function writeAttachment(dir: string, record: AttachmentRecord): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temporary = join(dir, `${RECORD}.${process.pid}.tmp`);
  writeFileSync(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, join(dir, RECORD));
}

export function removeAttachment(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Every recorded attachment under the root (folders without a record are skipped). */
export function listAttachments(root: string): { readonly dir: string; readonly record: AttachmentRecord }[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const found: { dir: string; record: AttachmentRecord }[] = [];
  for (const name of names) {
    const dir = join(root, name);
    try {
      const record = readAttachment(dir);
      if (record) found.push({ dir, record });
    } catch {
      // A corrupt record is reported by DEL/CHECK of that attachment, not by a scan.
    }
  }
  return found;
}

/** resolv.conf for discovery, from the primary plugin's DNS (the DHCP servers hand these to the guest). */
export function resolvConfText(dns: { readonly nameservers?: readonly string[]; readonly domain?: string; readonly search?: readonly string[]; readonly options?: readonly string[] }): string {
  const lines: string[] = [];
  for (const server of dns.nameservers ?? []) lines.push(`nameserver ${server}`);
  const search = [...(dns.domain ? [dns.domain] : []), ...(dns.search ?? [])];
  if (search.length > 0) lines.push(`search ${search.join(' ')}`);
  if ((dns.options ?? []).length > 0) lines.push(`options ${(dns.options ?? []).join(' ')}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
