// The serving core's per-attachment limits as plain values: token buckets for packets and for guest-triggered log lines.
//
// Pure (the caller passes the time): the servers use them to stop reading a flooding guest's socket for a while and to
// drop log lines beyond a budget, counting what they dropped so the next line can say so.

/** The limits of one attachment (every service of it); all rates per second. */
export interface ServeLimits {
  /** DHCPv4/DHCPv6 datagrams read per second per socket, sustained, and the burst above it. */
  readonly packetsPerSecond: number;
  readonly packetBurst: number;
  /** Datagrams one socket may handle in one turn of the event loop before the others get theirs. */
  readonly packetsPerTurn: number;
  /** Router solicitations read per second per attachment, and the burst. */
  readonly solicitationsPerSecond: number;
  readonly solicitationBurst: number;
  /** Guest-triggered log lines (exchanges, RELEASE/DECLINE, ignored or malformed requests, solicited RAs) per second, and the burst. */
  readonly logLinesPerSecond: number;
  readonly logBurst: number;
}

/**
 * Defaults: far above what a guest does (a DORA at boot, a renewal every half lease, 3 RS at boot), high enough for
 * perfdhcp at 2000 exchanges/s (4000 datagrams/s) against one attachment, low enough that one flooding guest takes a
 * bounded share of the process. 8 datagrams per turn: another guest's request waits at most that many of a flooder's.
 */
export const DEFAULT_SERVE_LIMITS: ServeLimits = {
  packetsPerSecond: 5000,
  packetBurst: 2000,
  packetsPerTurn: 8,
  solicitationsPerSecond: 10,
  solicitationBurst: 20,
  logLinesPerSecond: 20,
  logBurst: 200,
};

/** A token bucket: `burst` tokens, refilled at `rate` per second; time in ms. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
      this.last = now;
    }
  }

  /** Takes one token; false when none is left. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until one token is there again (0: now). */
  msUntilToken(now: number): number {
    this.refill(now);
    if (this.tokens >= 1 || this.rate <= 0) return this.rate <= 0 ? Number.POSITIVE_INFINITY : 0;
    return Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }
}

/** Guest-triggered log lines of one attachment: lets a budget through, counts the rest. */
export class LogBudget {
  private readonly bucket: TokenBucket;
  private dropped = 0;

  constructor(limits: Pick<ServeLimits, 'logLinesPerSecond' | 'logBurst'>, now: number) {
    this.bucket = new TokenBucket(limits.logLinesPerSecond, limits.logBurst, now);
  }

  /** true: write the line. false: it is counted as suppressed. */
  allow(now: number): boolean {
    if (this.bucket.take(now)) return true;
    this.dropped++;
    return false;
  }

  /** Lines suppressed since the last call (then 0). */
  takeSuppressed(): number {
    const dropped = this.dropped;
    this.dropped = 0;
    return dropped;
  }
}
