// What every serve-time service (DHCPv4, DHCPv6, router advertiser) is given by the serving core, and the handle it returns.
import type { Logger } from 'pino';
import type { FdPoller } from '../agent/drivers/fd-poller.js';
import type { LogBudget, ServeLimits } from './limits.js';

export interface RunningService {
  /** What is served and where, e.g. "dhcpv4 k6t-eth0"; used in logs. */
  readonly name: string;
  /**
   * Stops the service and releases its sockets/timers; idempotent, never rejects. goodbye (default true): a router
   * advertiser first sends its final RA (router lifetime 0). A daemon that stops for a restart passes false, so the
   * guests keep their default route until the next daemon advertises again.
   */
  close(options?: { readonly goodbye?: boolean }): Promise<void>;
}

/** What the serving core gives a service of one attachment's network. */
export interface ServiceContext {
  /** The network's logger (e.g. serve's VMI logger with {network}); the service adds its own bindings once. */
  readonly logger: Logger;
  /**
   * Runs fn synchronously with the main thread in the attachment's network namespace (where the service creates its
   * sockets and reads the bridge's addresses); fn must not leave work for later.
   */
  readonly inNamespace: <T>(fn: () => T) => T;
  readonly limits: ServeLimits;
  /** The attachment's budget for guest-triggered log lines, shared by its services. */
  readonly logBudget: LogBudget;
  /** The process's poller for raw sockets (made on first use). */
  readonly poller: () => FdPoller;
}

/**
 * Whether a guest-triggered line may be written now (the attachment's log budget). When lines were suppressed since
 * the last one, says how many first (one warn line on `log`).
 */
export function guestLineAllowed(context: ServiceContext, log: Logger): boolean {
  if (!context.logBudget.allow(Date.now())) return false;
  const suppressed = context.logBudget.takeSuppressed();
  if (suppressed > 0) log.warn({ suppressed }, `${suppressed} guest-triggered log lines suppressed (more than ${context.limits.logLinesPerSecond}/s)`);
  return true;
}
