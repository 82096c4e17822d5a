// The serving core: answers DHCPv4, DHCPv6 and router solicitations for any number of attachments (each a set of planned
// networks in one pod network namespace) from one event loop. Used by `serve` (one attachment: its pod), `sidecar
// --serve` (one attachment per network the hook planned) and the cni-daemon (one per CNI attachment).
//
// Per attachment it holds only what serving needs: the namespace (a NetnsScope, for creating the sockets and reading the
// bridge's addresses), the services' sockets and timers, the plan, and a small logger (the caller's bindings). Sockets
// are created inside the attachment's namespace (NetnsScope.run, synchronous) and bound to its bridge; everything else
// runs in the process's own namespace. Raw ICMPv6 sockets of every attachment share one FdPoller (one thread).
// Isolation: each attachment has its own limits (receive-gate.ts: packets per loop turn and per second per socket; RS
// per second; a budget of guest-triggered log lines), and a failure of one attachment (its namespace or bridge gone, a
// socket error) is that attachment's: add() rejects for it alone, the others keep serving.
import type { Logger } from 'pino';
import { openNetnsScope, type NetnsScope, type NetnsTarget } from '../apply/netns.js';
import type { NetworkState } from '../apply/state-dir.js';
import { createFdPoller, type FdPoller } from '../drivers/fd-poller.js';
import { hasErrno } from '../drivers/kernel-error.js';
import { AgentError } from '../plan/errors.js';
import { startDhcpV4Server } from '../../dhcp/server-v4.js';
import { DEFAULT_SERVE_LIMITS, LogBudget, type ServeLimits } from '../../dhcp/limits.js';
import type { RunningService, ServiceContext } from '../../dhcp/service.js';

/** A network as the core serves it: its name and what setup planned for it. */
export interface ServedNetwork {
  readonly name: string;
  readonly state: Pick<NetworkState, 'bridge' | 'dhcp' | 'dhcpv6'>;
}

export interface AttachmentSpec {
  /** Unique among the core's attachments (the CNI attachment key, a network name, …). */
  readonly id: string;
  /** The pod's network namespace; null: the process's own (serve run inside the pod). */
  readonly netns: NetnsTarget | null;
  readonly networks: readonly ServedNetwork[];
  /** Added to every line of this attachment (keep it small: who it is). */
  readonly bindings?: Readonly<Record<string, string>>;
}

export interface ServedAttachment {
  readonly id: string;
  /** e.g. ["dhcpv4 k6t-eth0", "dhcpv6 k6t-eth0", "ra k6t-eth0"]. */
  readonly services: readonly string[];
}

/** One kind of per-network service. */
interface ServiceKind {
  readonly kind: string;
  /** The state field that configures it, for error messages (e.g. "dhcp"). */
  readonly field: string;
  planned(network: ServedNetwork): boolean;
  start(network: ServedNetwork, context: ServiceContext): Promise<RunningService>;
  /** For a service the guest can do without: why this failure only skips it (a warning), or null when it is fatal. */
  skippable?(err: unknown): string | null;
}

/**
 * Every service, in start order. The IPv6 services are imported only when a network plans them, so an IPv4-only
 * `serve` never loads (or depends on) their raw-socket code.
 */
const SERVICE_KINDS: readonly ServiceKind[] = [
  {
    kind: 'dhcpv4',
    field: 'dhcp',
    planned: (network) => Boolean(network.state.dhcp),
    start: (network, context) => startDhcpV4Server(network.state.dhcp!, context),
  },
  {
    kind: 'dhcpv6',
    field: 'dhcpv6',
    planned: (network) => Boolean(network.state.dhcpv6),
    start: async (network, context) => (await import('../../dhcp/v6-server.js')).startDhcpV6Server(network.state.dhcpv6!, context),
  },
  {
    kind: 'router advertisements',
    field: 'dhcpv6.ra',
    planned: (network) => Boolean(network.state.dhcpv6?.ra),
    start: async (network, context) => (await import('../../dhcp/ra-server.js')).startRouterAdvertiser(network.state.dhcpv6!, context),
    // RAs are beyond KubeVirt (it sends none); their raw ICMPv6 socket needs CAP_NET_RAW, which a launcher running as
    // 107 with only NET_BIND_SERVICE (the image's default) lacks: DHCPv4/v6 go on without them.
    skippable: (err) =>
      hasErrno(err, 'EPERM', 'EACCES')
        ? 'router advertisements not sent: a raw ICMPv6 socket needs CAP_NET_RAW; the guest gets its DHCPv6 address but no IPv6 default route from the agent (as in KubeVirt)'
        : null,
  },
];

/** Whether any service is planned for the network. */
export function planned(network: ServedNetwork): boolean {
  return SERVICE_KINDS.some((kind) => kind.planned(network));
}

/** The process's own namespace: run() just runs. */
const OWN_NAMESPACE: NetnsScope = { path: '', run: (fn) => fn(), close: () => undefined };

interface Attachment {
  readonly id: string;
  readonly scope: NetnsScope;
  readonly services: RunningService[];
}

export interface ServingCoreOptions {
  readonly logger: Logger;
  readonly limits?: ServeLimits;
}

export class ServingCore {
  private readonly attachments = new Map<string, Attachment>();
  /** Per id, the add/remove in progress: operations on one attachment never interleave. */
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly limits: ServeLimits;
  private poller: FdPoller | null = null;
  private closed = false;

  constructor(private readonly options: ServingCoreOptions) {
    this.limits = options.limits ?? DEFAULT_SERVE_LIMITS;
  }

  /** Ids of the attachments served. */
  ids(): string[] {
    return [...this.attachments.keys()];
  }

  has(id: string): boolean {
    return this.attachments.has(id);
  }

  /** Descriptors held per attachment are its sockets and its namespace; this many raw sockets share the poller. */
  get polled(): number {
    return this.poller?.size ?? 0;
  }

  /**
   * Starts serving an attachment (replacing one with the same id). On a failure, stops what it started for this
   * attachment and rejects with an AgentError naming the network and service (exit status 3 when a bridge is missing).
   */
  add(spec: AttachmentSpec): Promise<ServedAttachment> {
    return this.serialized(spec.id, async () => {
      if (this.closed) throw new AgentError('serve', 'the serving core is closed', 1);
      await this.stop(spec.id, false);
      return this.start(spec);
    });
  }

  /** Stops serving an attachment (its sockets closed, timers cleared). goodbye: the final RA (default true). */
  remove(id: string, options: { readonly goodbye?: boolean } = {}): Promise<boolean> {
    return this.serialized(id, () => this.stop(id, options.goodbye ?? true));
  }

  /** Stops every attachment and the poller. goodbye as in remove (a restarting daemon passes false). */
  async close(options: { readonly goodbye?: boolean } = {}): Promise<void> {
    this.closed = true;
    await Promise.all(this.ids().map((id) => this.remove(id, options)));
    await Promise.all([...this.pending.values()].map((p) => p.catch(() => undefined)));
    await this.poller?.close();
    this.poller = null;
  }

  private serialized<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.pending.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    const settled = next.catch(() => undefined);
    this.pending.set(id, settled);
    void settled.then(() => {
      if (this.pending.get(id) === settled) this.pending.delete(id);
    });
    return next;
  }

  private getPoller(): FdPoller {
    this.poller ??= createFdPoller({
      onHandlerError: (fd, error) => this.options.logger.error({ fd, err: error instanceof Error ? error.message : String(error) }, 'raw socket handler failed'),
    });
    return this.poller;
  }

  private async start(spec: AttachmentSpec): Promise<ServedAttachment> {
    const scope = spec.netns === null ? OWN_NAMESPACE : openNetnsScope(spec.netns);
    const logger = spec.bindings === undefined ? this.options.logger : this.options.logger.child(spec.bindings);
    const logBudget = new LogBudget(this.limits, Date.now());
    const inNamespace = <T>(fn: () => T): T => scope.run(fn);
    const poller = (): FdPoller => this.getPoller();
    const running: RunningService[] = [];
    for (const network of spec.networks) {
      const context: ServiceContext = { logger: logger.child({ network: network.name }), inNamespace, limits: this.limits, logBudget, poller };
      for (const kind of SERVICE_KINDS) {
        if (!kind.planned(network)) continue;
        try {
          running.push(await kind.start(network, context));
        } catch (err) {
          const skipped = kind.skippable?.(err) ?? null;
          if (skipped !== null) {
            context.logger.warn({ err: err instanceof Error ? err.message : String(err) }, skipped);
            continue;
          }
          await Promise.all(running.map((service) => service.close({ goodbye: false })));
          scope.close();
          const message = err instanceof Error ? err.message : String(err);
          const missing = /ENODEV|no such device/i.test(message);
          throw new AgentError(
            `networks.${network.name}.${kind.field}`,
            `cannot start ${kind.kind} on ${network.state.bridge ?? 'its bridge'}: ${message}${missing ? ' (run setup first)' : ''}`,
            missing ? 3 : 1,
          );
        }
      }
    }
    this.attachments.set(spec.id, { id: spec.id, scope, services: running });
    return { id: spec.id, services: running.map((service) => service.name) };
  }

  private async stop(id: string, goodbye: boolean): Promise<boolean> {
    const attachment = this.attachments.get(id);
    if (attachment === undefined) return false;
    this.attachments.delete(id);
    await Promise.all(attachment.services.map((service) => service.close({ goodbye })));
    attachment.scope.close();
    return true;
  }
}
