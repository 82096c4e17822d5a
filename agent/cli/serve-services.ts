// The per-network services serve runs (DHCPv4, DHCPv6, router advertisements) and their start: shared by `serve` and `sidecar --serve`.
import type { Logger } from 'pino';
import { startDhcpV4Server } from '../../dhcp/server-v4.js';
import type { RunningService } from '../../dhcp/service.js';
import { hasErrno } from '../drivers/kernel-error.js';
import { AgentError } from '../plan/errors.js';
import type { NetworkState } from '../apply/state-dir.js';

/** A network as serve sees it: its name and what setup recorded for it. */
export interface ServedNetwork {
  readonly name: string;
  readonly state: Pick<NetworkState, 'bridge' | 'dhcp' | 'dhcpv6'>;
}

/** One kind of per-network service. */
interface ServiceKind {
  readonly kind: string;
  /** The state field that configures it, for error messages (e.g. "dhcp"). */
  readonly field: string;
  /** Whether setup planned this service for the network. */
  planned(network: ServedNetwork): boolean;
  /** Starts it; called only when planned. */
  start(network: ServedNetwork, logger: Logger): Promise<RunningService>;
  /** For a service serve can do without: why this failure only skips it (a warning), or null when it is fatal. */
  skippable?(err: unknown): string | null;
}

/**
 * Every service serve can run, in start order. The IPv6 services are imported only when a network plans them, so
 * an IPv4-only pod never loads (or depends on) their raw-socket code.
 */
const SERVICE_KINDS: readonly ServiceKind[] = [
  {
    kind: 'dhcpv4',
    field: 'dhcp',
    planned: (network) => Boolean(network.state.dhcp),
    start: (network, logger) => startDhcpV4Server(network.state.dhcp!, logger),
  },
  {
    kind: 'dhcpv6',
    field: 'dhcpv6',
    planned: (network) => Boolean(network.state.dhcpv6),
    start: async (network, logger) => (await import('../../dhcp/v6-server.js')).startDhcpV6Server(network.state.dhcpv6!, logger),
  },
  {
    kind: 'router advertisements',
    field: 'dhcpv6.ra',
    planned: (network) => Boolean(network.state.dhcpv6?.ra),
    start: async (network, logger) => (await import('../../dhcp/ra-server.js')).startRouterAdvertiser(network.state.dhcpv6!, logger),
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

/** Starts every service of every network; on a failure, stops what already started and throws one AgentError. */
export async function startAll(networks: readonly ServedNetwork[], logger: Logger): Promise<RunningService[]> {
  const running: RunningService[] = [];
  for (const network of networks) {
    for (const kind of SERVICE_KINDS) {
      if (!kind.planned(network)) continue;
      const networkLogger = logger.child({ network: network.name });
      try {
        running.push(await kind.start(network, networkLogger));
      } catch (err) {
        const skipped = kind.skippable?.(err) ?? null;
        if (skipped !== null) {
          networkLogger.warn({ err: err instanceof Error ? err.message : String(err) }, skipped);
          continue;
        }
        await Promise.all(running.map((service) => service.close()));
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
  return running;
}

