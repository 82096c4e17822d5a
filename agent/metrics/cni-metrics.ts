// The cni-daemon's Prometheus metrics: CNI request counts and durations, attachments per binding, and the spoof guard's drops read from nft at scrape time.
//
// Names follow the ecosystem (OVN-Kubernetes' ovnkube_node_cni_request_duration_seconds): every metric starts with
// virt_net_agent_. Attachments and drops are collected when Prometheus scrapes: attachments from the state root (the
// records ADD wrote; re-read only after an invocation changed something, so a scrape of a quiet node reads nothing),
// drops from the guard table's named counter in each guarded attachment's network namespace (one nf_tables netlink
// GETOBJ on a socket opened in that namespace, agent/drivers/nft-counters.ts; a table made by a version without the
// counter is read by dumping its `counter ... drop` rules instead; a socket is opened
// inside one synchronous NetnsScope.run, so no CNI invocation ever runs while the main thread is in a pod's namespace).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { inspectAttachment } from '../cni/attachment.js';
import { openNetnsScope } from '../apply/netns.js';
import { SyncNetlinkSocket } from '../drivers/netlink-sync.js';
import { chainDroppedPackets, namedCounterPackets, NETLINK_NETFILTER, NFPROTO_BRIDGE } from '../drivers/nft-counters.js';
import { SPOOF_CHAIN, SPOOF_DROPS_COUNTER, SPOOF_TABLE } from '../../bindings/spoof-nft.js';
import { spoofProtectionWanted } from '../plan/spoof-guard.js';
import type { Vmi } from '../plan/vmi-types.js';
import { registerServingMetrics } from './serving-metrics.js';

export const METRIC_PREFIX = 'virt_net_agent_';

/** Seconds: CNI calls take milliseconds (daemon) to a second (a cold fallback, a slow API read). */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface CniMetricsOptions {
  /** The agent configuration's state root (one folder per attachment). */
  readonly stateRoot: string;
  /** Reads the guard's dropped packets in one namespace (default: a GuardDropReader); tests pass stand-ins. */
  readonly readDrops?: (netns: string) => number | null;
}

export interface CniMetrics {
  readonly registry: Registry;
  /** Records one answered invocation (its CNI command, the spec error code or 0, its duration). */
  observe(command: string, code: number, seconds: number): void;
}

/** The CNI error code of an answer: 0 for success, else the `code` of the spec error JSON on stdout (999: unreadable). */
export function cniCode(exitCode: number, stdout: string): number {
  if (exitCode === 0) return 0;
  try {
    const code = (JSON.parse(stdout) as { code?: unknown }).code;
    return typeof code === 'number' && Number.isInteger(code) ? code : 999;
  } catch {
    return 999;
  }
}

/**
 * Reads the guard's drops per namespace over nf_tables netlink: one NETLINK_NETFILTER socket per namespace, opened
 * inside it once and kept (a socket stays in the namespace it was made in, so later reads need no setns). A socket
 * keeps its namespace alive: close() drops them all (after a DEL or GC), forget() those of namespaces no longer guarded.
 */
export class GuardDropReader {
  private readonly sockets = new Map<string, SyncNetlinkSocket>();

  /** The drops in `netns`; null when it is gone, has no guard table, or cannot be read. */
  read(netns: string): number | null {
    let socket = this.sockets.get(netns);
    if (socket === undefined) {
      try {
        const scope = openNetnsScope({ netnsPath: netns });
        try {
          socket = scope.run(() => new SyncNetlinkSocket(NETLINK_NETFILTER));
        } finally {
          scope.close();
        }
      } catch {
        return null;
      }
      this.sockets.set(netns, socket);
    }
    try {
      // The named counter; a guard table written before it existed (an older agent's attachment) has only its rules.
      return namedCounterPackets(socket, NFPROTO_BRIDGE, SPOOF_TABLE, SPOOF_DROPS_COUNTER) ?? chainDroppedPackets(socket, NFPROTO_BRIDGE, SPOOF_TABLE, SPOOF_CHAIN);
    } catch {
      socket.close();
      this.sockets.delete(netns);
      return null;
    }
  }

  /** Closes the sockets of namespaces not in `keep`. */
  forget(keep: ReadonlySet<string>): void {
    for (const [netns, socket] of this.sockets) {
      if (keep.has(netns)) continue;
      socket.close();
      this.sockets.delete(netns);
    }
  }

  close(): void {
    this.forget(new Set());
  }
}

interface Snapshot {
  readonly perBinding: ReadonlyMap<string, number>;
  /** The netns of each attachment with the guard on. */
  readonly guarded: readonly string[];
}

export function createCniMetrics(options: CniMetricsOptions): CniMetrics {
  const registry = new Registry();
  const reader = options.readDrops === undefined ? new GuardDropReader() : null;
  const readDrops = options.readDrops ?? ((netns: string) => reader?.read(netns) ?? null);
  let snapshot: Snapshot | null = null;
  /** Drops counted from namespaces that are gone: a counter never goes down. */
  let retiredDrops = 0;
  const lastDrops = new Map<string, number>();

  /** Per attachment folder: its identity when read (inode, ctime) and what the record says. */
  const folders = new Map<string, { readonly stamp: string; readonly binding: string | null; readonly guardedNetns: string | null }>();
  const readFolder = (name: string): { binding: string | null; guardedNetns: string | null } => {
    const folder = inspectAttachment(join(options.stateRoot, name));
    if (folder.kind !== 'trusted' || folder.record === null) return { binding: null, guardedNetns: null };
    const record = folder.record;
    // The same decision ADD made: the VMI's annotation (from the pod's) wins over the configuration's default.
    const vmi = record.vmi as Vmi | null;
    const wanted = vmi !== null && typeof vmi === 'object' && typeof vmi.metadata === 'object' ? spoofProtectionWanted(vmi, record.spoofProtection) : record.spoofProtection;
    return { binding: record.binding, guardedNetns: wanted === true && record.netns !== '' ? record.netns : null };
  };
  /** Lists the state root; reads only the folders that are new or changed since the last scan (a stat each). */
  const scan = (): Snapshot => {
    if (snapshot !== null) return snapshot;
    let names: string[];
    try {
      names = readdirSync(options.stateRoot);
    } catch {
      names = [];
    }
    const present = new Set(names);
    for (const name of folders.keys()) if (!present.has(name)) folders.delete(name);
    const perBinding = new Map<string, number>();
    const guarded: string[] = [];
    for (const name of names) {
      let stamp: string;
      try {
        const st = lstatSync(join(options.stateRoot, name));
        if (!st.isDirectory()) continue;
        stamp = `${st.ino}:${st.ctimeMs}`;
      } catch {
        continue;
      }
      let entry = folders.get(name);
      if (entry === undefined || entry.stamp !== stamp) {
        entry = { stamp, ...readFolder(name) };
        folders.set(name, entry);
      }
      if (entry.binding !== null) perBinding.set(entry.binding, (perBinding.get(entry.binding) ?? 0) + 1);
      if (entry.guardedNetns !== null) guarded.push(entry.guardedNetns);
    }
    snapshot = { perBinding, guarded };
    return snapshot;
  };

  const durations = new Histogram({
    name: `${METRIC_PREFIX}cni_request_duration_seconds`,
    help: "Time the cni-daemon took to answer a CNI request, from the shim's connection to the answer, by command and CNI error code (0: success).",
    labelNames: ['command', 'code'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const requests = new Counter({
    name: `${METRIC_PREFIX}cni_requests_total`,
    help: 'CNI requests answered by the cni-daemon, by command and CNI error code (0: success).',
    labelNames: ['command', 'code'],
    registers: [registry],
  });
  new Gauge({
    name: `${METRIC_PREFIX}attachments`,
    help: 'Attachments the agent holds on this node (state folders under the state root), by binding.',
    labelNames: ['binding'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [binding, n] of scan().perBinding) this.set({ binding }, n);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}spoof_dropped_packets_total`,
    help: "Frames the anti-spoofing guard dropped (the guard rules' nft counters, read at scrape time; attachments torn down keep their last count).",
    registers: [registry],
    async collect() {
      const guarded = scan().guarded;
      reader?.forget(new Set(guarded));
      const now = new Map<string, number>();
      for (const netns of guarded) {
        const drops = readDrops(netns);
        if (drops !== null) now.set(netns, drops);
      }
      for (const [netns, drops] of lastDrops) if (!now.has(netns)) retiredDrops += drops;
      lastDrops.clear();
      let total = retiredDrops;
      for (const [netns, drops] of now) {
        lastDrops.set(netns, drops);
        total += drops;
      }
      this.reset();
      this.inc(total);
    },
  });

  // The daemon serves its attachments' DHCP and RAs (serveDhcp): the serving core's counters, zero when it does not.
  registerServingMetrics(registry);

  return {
    registry,
    observe(command, code, seconds) {
      const labels = { command, code: String(code) };
      durations.observe(labels, seconds);
      requests.inc(labels);
      // ADD, DEL and GC change the attachments; the next scrape re-reads the state root. After a DEL or GC a runtime
      // deletes namespaces: let go of them now rather than at the next scrape.
      if (command !== 'VERSION' && command !== 'STATUS' && command !== 'CHECK') snapshot = null;
      if (command === 'DEL' || command === 'GC') reader?.close();
    },
  };
}
