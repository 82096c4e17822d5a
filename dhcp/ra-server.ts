// The router advertiser of one bridge: RFC 4861 RAs from the bridge's link-local address, so the guest gets its IPv6
// default route (KubeVirt sends none: issues #7184, #19193).
//
// Schedule (RFC 4861 §6.2.4/§6.2.6, shortened initial interval): once the bridge's link-local address is usable (DAD
// done: bind(2) succeeds), an initial burst of 3 multicast RAs 1 s and 2 s apart, then one every 200–600 s (random).
// A Router Solicitation from a link-local source is answered by unicast at once (at most one per 300 ms); one from ::
// by a multicast RA no sooner than 3 s after the previous one (MIN_DELAY_BETWEEN_RAS). close() sends a final RA with
// router lifetime 0 (§6.2.5) so the guest drops the default route at once, then closes the socket (not when the
// serving process only restarts: close({ goodbye: false })).
// The raw socket is made in the attachment's namespace (as are the reads of the bridge's MAC and link-local address),
// is non-blocking and watched by the process's one FdPoller: solicitations are read on the main thread, at most
// SOLICITATIONS_PER_WAKE per wake, and over the attachment's rate the socket is not polled until a token is back (the
// kernel drops the excess), so a guest flooding RS costs a bounded share of the process.
import { countRouterAdvertisement } from './message-counters.js';
import { networkInterfaces } from 'node:os';
import { PlanError } from '../agent/plan/errors.js';
import type { DhcpV6Plan } from '../agent/plan/plan-types.js';
import { KernelError } from '../agent/drivers/kernel-error.js';
import { openIcmpv6Socket, type Icmpv6Socket } from '../agent/drivers/raw-socket.js';
import { TokenBucket } from './limits.js';
import { ALL_NODES, ICMPV6_ROUTER_SOLICITATION, MAX_RTR_ADV_INTERVAL_SECONDS, MIN_RTR_ADV_INTERVAL_SECONDS, buildRouterAdvertisement, isRouterSolicitation, routerAdvertisementFromPlan } from './ra.js';
import { guestLineAllowed, type RunningService, type ServiceContext } from './service.js';
import { bytesToIpv6, decodeDuid, ipv6ToBytes } from './v6-packet.js';
import { linkLocalFromMac } from './v6-responder.js';
import { fromHex } from './options.js';

export interface RouterAdvertiserOptions {
  /** Gaps between the initial RAs, ms (default [1000, 2000]: 3 RAs). */
  readonly initialGapsMs?: readonly number[];
  /** Periodic interval bounds, ms (default 200 s – 600 s). */
  readonly minIntervalMs?: number;
  readonly maxIntervalMs?: number;
}

const MIN_DELAY_BETWEEN_MULTICAST_RAS_MS = 3000;
const MIN_DELAY_BETWEEN_UNICAST_RAS_MS = 300;
const LINK_LOCAL_RETRY_MS = 200;
const SOLICITATIONS_PER_WAKE = 4;

/** The bridge MAC: from the kernel when the link has addresses, else from the plan's DUID-LL (the same MAC by design). */
function bridgeMac(plan: DhcpV6Plan): string | null {
  const fromKernel = networkInterfaces()[plan.interface]?.find((entry) => entry.mac !== '00:00:00:00:00:00')?.mac;
  if (fromKernel !== undefined) return fromKernel;
  try {
    return decodeDuid(fromHex(plan.serverDuid)).linkLayerAddress;
  } catch {
    return null;
  }
}

function kernelLinkLocal(iface: string): string | null {
  const entry = networkInterfaces()[iface]?.find((candidate) => candidate.family === 'IPv6' && candidate.address.toLowerCase().startsWith('fe80:'));
  return entry === undefined ? null : entry.address.split('%')[0] ?? null;
}

export async function startRouterAdvertiser(plan: DhcpV6Plan, context: ServiceContext, options: RouterAdvertiserOptions = {}): Promise<RunningService> {
  const iface = plan.interface;
  const log = context.logger.child({ service: 'ra', interface: iface });
  const mac = context.inNamespace(() => bridgeMac(plan));
  const advertisement = routerAdvertisementFromPlan(plan, mac);
  const goodbye = routerAdvertisementFromPlan(plan, mac, 0);
  if (advertisement === null || goodbye === null) throw new PlanError('dhcpv6.ra', `no router advertisements planned for ${iface}`);
  const message = buildRouterAdvertisement(advertisement);
  const finalMessage = buildRouterAdvertisement(goodbye);
  const socket: Icmpv6Socket = context.inNamespace(() => openIcmpv6Socket(iface, { receiveTypes: [ICMPV6_ROUTER_SOLICITATION] }));
  const fd = socket.fd;
  const solicitations = new TokenBucket(context.limits.solicitationsPerSecond, context.limits.solicitationBurst, Date.now());
  let resumeTimer: NodeJS.Timeout | null = null;
  let rateLimited = 0;

  const initialGaps = options.initialGapsMs ?? [1000, 2000];
  const minInterval = options.minIntervalMs ?? MIN_RTR_ADV_INTERVAL_SECONDS * 1000;
  const maxInterval = options.maxIntervalMs ?? MAX_RTR_ADV_INTERVAL_SECONDS * 1000;
  const allNodes = ipv6ToBytes(ALL_NODES);
  let source: string | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let solicitedTimer: NodeJS.Timeout | null = null;
  let lastMulticast = 0;
  let lastUnicast = 0;
  let sent = 0;

  const send = (bytes: Buffer, destination: Buffer, reason: string, routerLifetime: number, guestTriggered = false): void => {
    try {
      socket.send(bytes, destination);
      sent++;
      countRouterAdvertisement();
      if (guestTriggered && !guestLineAllowed(context, log)) return;
      log.info({ source, destination: bytesToIpv6(destination), routerLifetime, reason, managed: advertisement.managed, other: advertisement.other }, `router advertisement (${reason})`);
    } catch (error) {
      if (guestTriggered && !guestLineAllowed(context, log)) return;
      log.warn({ err: error instanceof KernelError ? error.message : String(error), reason }, 'router advertisement not sent');
    }
  };

  const multicast = (reason: string, guestTriggered = false): void => {
    lastMulticast = Date.now();
    send(message, allNodes, reason, advertisement.routerLifetime, guestTriggered);
  };

  const schedule = (gapIndex: number): void => {
    if (closed) return;
    const gap = initialGaps[gapIndex];
    const delay = gap ?? minInterval + Math.random() * (maxInterval - minInterval);
    timer = setTimeout(() => {
      multicast(gap === undefined ? 'periodic' : 'initial');
      schedule(gapIndex + 1);
    }, delay);
  };

  /** Binds to the bridge's link-local address once DAD let it be used; then starts the burst. */
  const waitForLinkLocal = (attempt: number): void => {
    if (closed) return;
    const candidate = context.inNamespace(() => kernelLinkLocal(iface)) ?? (mac === null ? null : linkLocalFromMac(mac));
    if (candidate !== null) {
      try {
        socket.bindAddress(ipv6ToBytes(candidate));
        source = candidate;
        log.info({ source, mac }, 'router advertiser ready');
        multicast('initial');
        schedule(0);
        return;
      } catch (error) {
        if (!(error instanceof KernelError) || error.code !== 'EADDRNOTAVAIL') {
          log.error({ err: error instanceof Error ? error.message : String(error) }, 'router advertiser cannot bind its source address');
          return;
        }
      }
    }
    if (attempt === 0) log.info({ candidate }, 'router advertiser waiting for the bridge link-local address');
    timer = setTimeout(() => waitForLinkLocal(attempt + 1), LINK_LOCAL_RETRY_MS);
  };

  const answerSolicitation = (from: Buffer): void => {
    if (source === null) return; // the burst starts as soon as the link-local address is usable
    const unspecified = from.every((byte) => byte === 0);
    const now = Date.now();
    if (!unspecified && from[0] === 0xfe && ((from[1] ?? 0) & 0xc0) === 0x80) {
      if (now - lastUnicast < MIN_DELAY_BETWEEN_UNICAST_RAS_MS) return;
      lastUnicast = now;
      send(message, from, `solicited by ${bytesToIpv6(from)}`, advertisement.routerLifetime, true);
      return;
    }
    if (solicitedTimer !== null) return;
    const delay = Math.max(0, lastMulticast + MIN_DELAY_BETWEEN_MULTICAST_RAS_MS - now);
    solicitedTimer = setTimeout(() => {
      solicitedTimer = null;
      if (!closed) multicast('solicited', true);
    }, delay);
  };

  const poller = context.poller();
  /** Reads what the socket holds (a few per wake); over the rate, stops polling it until a token is back. */
  const onReadable = (): void => {
    for (let i = 0; i < SOLICITATIONS_PER_WAKE && !closed; i++) {
      const now = Date.now();
      if (!solicitations.take(now)) {
        rateLimited++;
        poller.pause(fd);
        resumeTimer = setTimeout(() => {
          resumeTimer = null;
          if (!closed) poller.resume(fd);
        }, Math.max(1, solicitations.msUntilToken(now)));
        if (guestLineAllowed(context, log)) log.warn({ rateLimited, limit: context.limits.solicitationsPerSecond }, 'router solicitations over the rate limit: reading paused');
        return;
      }
      let packet;
      try {
        packet = socket.tryReceive();
      } catch (error) {
        if (guestLineAllowed(context, log)) log.warn({ err: error instanceof Error ? error.message : String(error) }, 'router solicitation not read');
        return;
      }
      if (packet === null) return;
      if (isRouterSolicitation(packet.data)) answerSolicitation(packet.source);
    }
  };
  try {
    poller.watch(fd, onReadable);
  } catch (error) {
    socket.close();
    throw error;
  }

  waitForLinkLocal(0);

  let closing: Promise<void> | null = null;
  return {
    name: `ra ${iface}`,
    close(closeOptions) {
      if (closing === null) {
        closed = true;
        if (timer !== null) clearTimeout(timer);
        if (solicitedTimer !== null) clearTimeout(solicitedTimer);
        if (resumeTimer !== null) clearTimeout(resumeTimer);
        if (source !== null && closeOptions?.goodbye !== false) send(finalMessage, allNodes, 'shutdown', 0);
        poller.unwatch(fd);
        socket.close();
        log.info({ sent, rateLimited }, 'router advertiser stopped');
        closing = Promise.resolve();
      }
      return closing;
    },
  };
}
