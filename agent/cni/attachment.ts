// Per-attachment state of the plugin: one root-owned folder per (network name, container id, interface) holding what ADD recorded, read and written through descriptors.
//
// The folder is the agent's state dir of the attachment (state.json, lock) plus attachment.json (root 0600). Every
// access goes through agent/drivers/safe-fs.ts beneath a descriptor of the state root (the admin's stateRoot): no
// symlink is followed, the record is written to a random O_EXCL temporary renamed into place, removal is by unlinkat.
// A folder root does not own (an older version's binding-plugin folders were handed to the launcher user) is never
// read: DEL removes it unread, GC skips it, ADD and CHECK refuse it.
import { createHash } from 'node:crypto';
import { closeSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { openStateFolder, STATE_FILE, UntrustedStateError } from '../apply/state-dir.js';
import { existsAt, openDirectory, readFileBeneath, removeTreeAt, SafeFsError, writeFileAtomic } from '../drivers/safe-fs.js';
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
  /** false: the network configuration said `serveDhcp: false`, the daemon does not serve it (absent: served). */
  readonly serveDhcp?: boolean;
  /** The phase ADD planned (absent: start); role 2 plans migration-target for a migration's target pod. */
  readonly phase?: 'start' | 'migration-target';
  /** Pod sysctls ADD added beyond the binding's (role 2: the unprivileged sidecar's DHCP ports). */
  readonly podSysctls?: Readonly<Record<string, string>>;
  /** The result ADD printed. */
  readonly result: Record<string, unknown>;
}

/** Letters, digits and '-' as they are; any other byte (including '_' and '.') as _XX in hex. */
function encodeKeyPart(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9-]/.test(char) ? char : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Longest key spelled out; a longer one is hashed (a folder name has at most 255 bytes). */
const MAX_SPELLED_KEY = 200;

/**
 * The folder name of an attachment (also the VMI uid the agent keys its state dir on): the three parts encoded
 * (encodeKeyPart) and joined by '.', which no encoded part contains, so different attachments never share a folder
 * (network a_b + container c and network a + container b_c did with the old `a_b_c`). Beyond 200 characters:
 * `h.<sha256 of the three>` (one dot, so it cannot equal a spelled-out key, which has two).
 */
export function attachmentKey(network: string, containerId: string, ifname: string): string {
  const key = [network, containerId, ifname].map(encodeKeyPart).join('.');
  if (key.length <= MAX_SPELLED_KEY) return key;
  return `h.${createHash('sha256').update(JSON.stringify([network, containerId, ifname])).digest('hex')}`;
}

/** The key versions before the root-only layout used (ambiguous): DEL and CHECK still find their folders. */
export function legacyAttachmentKey(network: string, containerId: string, ifname: string): string {
  return `${network}_${containerId}_${ifname}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function attachmentDir(root: string, key: string): string {
  return join(root, key);
}

const RECORD = 'attachment.json';
const MAX_RECORD_BYTES = 8 << 20;

function parseRecord(text: string, shown: string): AttachmentRecord {
  try {
    const record = JSON.parse(text) as AttachmentRecord;
    if (record.version !== 1) throw new Error(`unknown version ${String(record.version)}`);
    return record;
  } catch (error) {
    throw new CniSpecError(CNI_CODES.ioFailure, 'stateRoot', `corrupt ${shown}: ${(error as Error).message}`);
  }
}

function ioError(error: unknown): never {
  if (error instanceof SafeFsError) throw new CniSpecError(CNI_CODES.ioFailure, 'stateRoot', error.message);
  throw error;
}

/** What is in an attachment's folder: nothing, a folder root does not trust, or root's own (with or without a record). */
export type AttachmentFolder =
  | { readonly kind: 'absent' }
  | { readonly kind: 'untrusted'; readonly error: UntrustedStateError }
  | { readonly kind: 'trusted'; readonly record: AttachmentRecord | null; readonly hasState: boolean };

/** Looks into <dir> (= <stateRoot>/<key>) without following links; reads the record only from a folder root trusts. */
export function inspectAttachment(dir: string): AttachmentFolder {
  const folder = openStateFolder(dirname(dir), basename(dir));
  if (folder === null) return { kind: 'absent' };
  try {
    if (folder.distrust !== null) return { kind: 'untrusted', error: new UntrustedStateError(dir, folder.distrust) };
    const text = readFileBeneath(folder.dirFd, RECORD, { maxBytes: MAX_RECORD_BYTES, owner: process.geteuid?.() ?? 0, shown: join(dir, RECORD) });
    return { kind: 'trusted', record: text === null ? null : parseRecord(text, join(dir, RECORD)), hasState: existsAt(folder.dirFd, STATE_FILE) };
  } catch (error) {
    return ioError(error);
  } finally {
    folder.close();
  }
}

/** The record of a folder root trusts, or null; an untrusted folder is error 74 naming it. */
export function readAttachment(dir: string): AttachmentRecord | null {
  const folder = inspectAttachment(dir);
  if (folder.kind === 'untrusted') throw new CniSpecError(CNI_CODES.ioFailure, 'stateRoot', folder.error.message);
  return folder.kind === 'trusted' ? folder.record : null;
}

/** Writes attachment.json (root 0600) into the folder setup made, through a random O_EXCL temporary renamed into place. */
export function writeAttachment(dir: string, record: AttachmentRecord): void {
  const folder = openStateFolder(dirname(dir), basename(dir));
  if (folder === null) throw new CniSpecError(CNI_CODES.ioFailure, 'stateRoot', `${dir} is gone`);
  try {
    if (folder.distrust !== null) throw new CniSpecError(CNI_CODES.ioFailure, 'stateRoot', new UntrustedStateError(dir, folder.distrust).message);
    writeFileAtomic(folder.dirFd, RECORD, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600, shown: dir });
  } catch (error) {
    ioError(error);
  } finally {
    folder.close();
  }
}

/** Removes the folder and all in it through descriptors (a symlink inside is unlinked, never followed). */
export function removeAttachment(dir: string): void {
  let rootFd: number;
  try {
    rootFd = openDirectory(dirname(dir));
  } catch {
    return;
  }
  try {
    removeTreeAt(rootFd, basename(dir));
  } catch (error) {
    ioError(error);
  } finally {
    closeSync(rootFd);
  }
}

/** Every recorded attachment under the root in a folder root trusts (folders without a record are skipped). */
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
      const folder = inspectAttachment(dir);
      if (folder.kind === 'trusted' && folder.record !== null) found.push({ dir, record: folder.record });
    } catch {
      // A corrupt record is reported by DEL/CHECK of that attachment, not by a scan.
    }
  }
  return found;
}

/**
 * The folder of an attachment: its own key, else (written before the unambiguous keys) the legacy key when that
 * folder's record names this very attachment, or has no record to tell. null when neither exists.
 */
export function findAttachmentDir(root: string, network: string, containerId: string, ifname: string): string | null {
  const dir = attachmentDir(root, attachmentKey(network, containerId, ifname));
  if (inspectAttachment(dir).kind !== 'absent') return dir;
  const legacy = attachmentDir(root, legacyAttachmentKey(network, containerId, ifname));
  const folder = inspectAttachment(legacy);
  if (folder.kind === 'absent') return null;
  if (folder.kind === 'trusted' && folder.record !== null) {
    const { record } = folder;
    if (record.network !== network || record.containerId !== containerId || record.ifname !== ifname) return null;
  }
  return legacy;
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
