// The cni-daemon as a serving process: it answers DHCPv4, DHCPv6 and router solicitations for every attachment it (or
// the fallback executable) plumbed, from the ADD's answer until its DEL or GC, with the one ServingCore.
//
// What is served comes only from root's own records under the admin's state root (never from the invocation): the
// attachment record (attachment.json: the pod's namespace file) and setup's state (state.json, read through StateDir:
// beneath the root, no symlinks, root-owned). The namespace is checked before use (a network namespace, not the node's)
// by openNetnsScope.
// - ADD: once the plugin answered success, the attachment is served (before the answer reaches the runtime).
// - DEL: serving stops (sockets closed) before the plugin tears the attachment down. GC: after it, every attachment
//   whose folder is gone stops.
// - Start (adopt): every recorded attachment is served again, without touching a link; one whose namespace is gone
//   (the pod went away without a DEL) is left out and reported: GC removes its record.
// - Every `rescanMs`: a namespace that vanished under a served attachment (its path gone, or now another namespace)
//   stops being served and is reported (our sockets would otherwise keep the dead pod's namespace, and its links,
//   alive); a record written meanwhile by the fallback executable is picked up.
// - Stop (SIGTERM, a rolling update): sockets close without the final RA, so guests keep their default route until
//   the next daemon advertises again; leases are plan-derived, so the next daemon answers every renewal identically.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { StateDir } from '../apply/state-dir.js';
import type { ServeLimits } from '../../dhcp/limits.js';
import { planned, ServingCore, type ServedNetwork } from '../serve/core.js';
import { attachmentDir, findAttachmentDir, readAttachment } from './attachment.js';
import type { CniInvocation, CniOutcome } from './spec.js';

export type CniHandler = (invocation: CniInvocation) => Promise<CniOutcome>;

export interface CniServingOptions {
  readonly stateRoot: string;
  readonly logger: Logger;
  readonly limits?: ServeLimits;
  /** How often namespaces are checked and the state root rescanned (default 10 s; 0: never). */
  readonly rescanMs?: number;
}

/** Why an attachment is not served: nothing planned (passt, SR-IOV), or no longer there. */
type Verdict = { readonly served: readonly string[] } | { readonly skipped: string } | { readonly dropped: string };

/** Which attachment: what the runtime names it by. */
interface Identity {
  readonly network: string;
  readonly containerId: string;
  readonly ifname: string;
}

interface Served extends Identity {
  /** dev:inode of the namespace file when serving started. */
  readonly netnsId: string;
  readonly netns: string;
}

export interface AdoptReport {
  readonly served: readonly string[];
  /** Namespace gone without a DEL (GC removes the record). */
  readonly dropped: readonly { readonly key: string; readonly reason: string }[];
  readonly failed: readonly { readonly key: string; readonly error: string }[];
}

/** Milliseconds since `started` (process.hrtime.bigint()), two decimals. */
export function msSince(started: bigint): number {
  return Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100;
}

function namespaceId(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** The command of an invocation and the attachment it names (null when it names none: VERSION, STATUS, GC, bad input). */
function invocationIdentity(invocation: CniInvocation): { readonly command: string; readonly identity: Identity | null } {
  const command = invocation.env['CNI_COMMAND'] ?? '';
  const containerId = invocation.env['CNI_CONTAINERID'] ?? '';
  const ifname = invocation.env['CNI_IFNAME'] ?? '';
  let network = '';
  try {
    const conf = JSON.parse(invocation.stdin) as { name?: unknown };
    if (typeof conf.name === 'string') network = conf.name;
  } catch {
    // A malformed configuration: the plugin itself refused it.
  }
  return { command, identity: network !== '' && containerId !== '' && ifname !== '' ? { network, containerId, ifname } : null };
}

export class CniServing {
  readonly core: ServingCore;
  private readonly served = new Map<string, Served>();
  /** Recorded attachments not served and why (nothing planned, namespace gone, failed): a rescan leaves them alone. */
  private readonly notServed = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly options: CniServingOptions) {
    this.core = new ServingCore({ logger: options.logger, ...(options.limits !== undefined ? { limits: options.limits } : {}) });
  }

  /** Keys served now. */
  keys(): string[] {
    return [...this.served.keys()];
  }

  /** Wraps the plugin's handler: serve after a successful ADD, stop before DEL, sync after GC. */
  wrap(handler: CniHandler): CniHandler {
    return async (invocation) => {
      const { command, identity } = invocationIdentity(invocation);
      if (command === 'DEL' && identity !== null) await this.stopIdentity(identity);
      const outcome = await handler(invocation);
      if (command === 'ADD' && identity !== null && outcome.exitCode === 0) {
        // The folder ADD used: the attachment's key, or the key an older version recorded it under.
        const dir = findAttachmentDir(this.options.stateRoot, identity.network, identity.containerId, identity.ifname);
        if (dir !== null) {
          this.notServed.delete(basename(dir));
          await this.serveReporting(basename(dir), 'ADD');
        }
      }
      // Again after DEL: an ADD of the same attachment that was still running when the DEL arrived served it meanwhile.
      if (command === 'DEL' && identity !== null) await this.stopIdentity(identity);
      if (command === 'GC' && outcome.exitCode === 0) await this.stopMissing('GC');
      return outcome;
    };
  }

  /** Serves every recorded attachment (daemon start); then checks and rescans every rescanMs. */
  async adopt(): Promise<AdoptReport> {
    const served: string[] = [];
    const dropped: { key: string; reason: string }[] = [];
    const failed: { key: string; error: string }[] = [];
    await Promise.all(
      this.recordedKeys().map(async (key) => {
        try {
          const verdict = await this.serve(key);
          if ('served' in verdict) served.push(key);
          else if ('dropped' in verdict) dropped.push({ key, reason: verdict.dropped });
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          this.notServed.set(key, message);
          failed.push({ key, error: message });
        }
      }),
    );
    for (const { key, reason } of dropped) this.options.logger.warn({ attachment: key, reason }, 'attachment not adopted: its namespace is gone without a DEL (GC removes its record)');
    for (const { key, error } of failed) this.options.logger.error({ attachment: key, err: error }, 'attachment not adopted: serving failed');
    this.schedule();
    return { served: served.sort(), dropped, failed };
  }

  /**
   * Serves one attachment from its records (replacing what was served for it). Throws when its sockets cannot be
   * made (a missing bridge: the attachment is broken, the others go on).
   */
  async serve(key: string): Promise<Verdict> {
    const dir = attachmentDir(this.options.stateRoot, key);
    const verdict = await this.serveFromRecords(key, dir);
    if ('served' in verdict) this.notServed.delete(key);
    else this.notServed.set(key, 'skipped' in verdict ? verdict.skipped : verdict.dropped);
    return verdict;
  }

  private async serveFromRecords(key: string, dir: string): Promise<Verdict> {
    const record = readAttachment(dir);
    if (record === null) return { skipped: 'no attachment record' };
    if (record.serveDhcp === false) return { skipped: 'the network configuration says serveDhcp: false' };
    const state = new StateDir(this.options.stateRoot, key).read();
    if (state === null) return { skipped: 'no state recorded' };
    const networks: ServedNetwork[] = Object.entries(state.networks).map(([name, network]) => ({ name, state: network }));
    if (!networks.some(planned)) return { skipped: 'no DHCP planned (binding without a DHCP server)' };
    const netnsId = namespaceId(record.netns);
    if (netnsId === null) return { dropped: `namespace ${record.netns} is gone` };
    const result = await this.core.add({ id: key, netns: { netnsPath: record.netns, refuseOwn: true }, networks, bindings: { attachment: key } });
    this.served.set(key, { network: record.network, containerId: record.containerId, ifname: record.ifname, netns: record.netns, netnsId });
    return { served: result.services };
  }

  /** Stops serving one attachment (closing its sockets). goodbye: the final RA. */
  async stop(key: string, why: string, goodbye = true): Promise<void> {
    if (!this.served.delete(key)) return;
    const started = process.hrtime.bigint();
    await this.core.remove(key, { goodbye });
    this.options.logger.info({ attachment: key, why, ms: msSince(started) }, 'attachment no longer served');
  }

  /** Stops serving every attachment the runtime names so (one folder; two while an older version's one remains). */
  private async stopIdentity(identity: Identity): Promise<void> {
    for (const [key, served] of [...this.served]) {
      if (served.network === identity.network && served.containerId === identity.containerId && served.ifname === identity.ifname) await this.stop(key, 'DEL');
    }
  }

  /** Stops serving and the periodic checks; goodbye false for a restart (guests keep their routes). */
  async close(options: { readonly goodbye?: boolean } = {}): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await this.scanning;
    this.served.clear();
    await this.core.close(options);
  }

  private async serveReporting(key: string, why: string): Promise<void> {
    const started = process.hrtime.bigint();
    try {
      const verdict = await this.serve(key);
      if ('served' in verdict) this.options.logger.info({ attachment: key, why, services: verdict.served, ms: msSince(started) }, 'attachment served');
      else if ('dropped' in verdict) this.options.logger.warn({ attachment: key, why, reason: verdict.dropped }, 'attachment not served');
    } catch (error) {
      this.served.delete(key);
      this.notServed.set(key, error instanceof Error ? error.message : String(error));
      this.options.logger.error({ attachment: key, why, err: error instanceof Error ? error.message : String(error) }, 'attachment plumbed but not served');
    }
  }

  private recordedKeys(): string[] {
    try {
      return readdirSync(this.options.stateRoot).filter((name) => existsSync(join(this.options.stateRoot, name, 'attachment.json')));
    } catch {
      return [];
    }
  }

  private async stopMissing(why: string): Promise<void> {
    for (const key of [...this.notServed.keys()]) {
      if (!existsSync(join(attachmentDir(this.options.stateRoot, key), 'attachment.json'))) this.notServed.delete(key);
    }
    for (const key of this.keys()) {
      if (!existsSync(join(attachmentDir(this.options.stateRoot, key), 'attachment.json'))) await this.stop(key, why);
    }
  }

  private schedule(): void {
    const every = this.options.rescanMs ?? 10_000;
    if (every <= 0 || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.scanning = this.rescan().finally(() => {
        this.scanning = null;
        this.schedule();
      });
    }, every);
    this.timer.unref();
  }

  /** Drops attachments whose namespace vanished; serves records written by someone else (the fallback executable). */
  private async rescan(): Promise<void> {
    for (const [key, served] of [...this.served]) {
      if (this.closed) return;
      if (namespaceId(served.netns) === served.netnsId) continue;
      await this.stop(key, 'namespace vanished', false);
      this.notServed.set(key, 'namespace vanished');
      this.options.logger.warn({ attachment: key, netns: served.netns }, 'attachment dropped: its namespace vanished without a DEL (GC removes its record)');
    }
    await this.stopMissing('record removed');
    for (const key of this.recordedKeys()) {
      if (this.closed) return;
      if (this.served.has(key) || this.notServed.has(key) || this.core.has(key)) continue;
      await this.serveReporting(key, 'rescan');
    }
  }
}
