// Fair reading of many guests' UDP sockets in one event loop: per socket, a few datagrams per loop turn and a sustained
// rate, enforced by pausing the socket's reads (its datagrams wait in the kernel's buffer) rather than by dropping.
//
// libuv reads up to 32 datagrams from one ready socket before it looks at the next; a guest flooding its socket would
// put up to 32 of its requests before another guest's one in every turn. After `packetsPerTurn` datagrams in one turn
// the gate stops reading the socket and starts again in the same turn's check phase (setImmediate), after the other
// sockets' reads: another guest waits for at most that many of the flooder's requests. Over the sustained rate (token
// bucket) the socket stays paused until a token is back, so the flood costs the process nothing and the kernel drops
// what overflows the receive buffer. Where this Node's dgram does not let reads pause, the gate drops instead (and
// counts it).
import type { Socket } from 'node:dgram';
import { setReceiving } from '../agent/drivers/socket-options.js';
import { TokenBucket, type ServeLimits } from './limits.js';

/** One process-wide turn counter: bumped once per event-loop turn in which a gate counted a datagram. */
let turn = 0;
let turnScheduled = false;

function bumpTurn(): void {
  turn++;
  turnScheduled = false;
}

function currentTurn(): number {
  if (!turnScheduled) {
    turnScheduled = true;
    setImmediate(bumpTurn);
  }
  return turn;
}

export interface GateCounters {
  /** Times the socket was paused because its rate was exceeded. */
  rateLimited: number;
  /** Datagrams dropped (only where pausing is not available). */
  dropped: number;
}

export class ReceiveGate {
  private readonly bucket: TokenBucket;
  private turnSeen = -1;
  private inTurn = 0;
  private paused = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  readonly counters: GateCounters = { rateLimited: 0, dropped: 0 };

  constructor(
    private readonly socket: Socket,
    private readonly limits: Pick<ServeLimits, 'packetsPerSecond' | 'packetBurst' | 'packetsPerTurn'>,
    /** Called once per episode when the sustained rate is exceeded (for a rate-limited log line). */
    private readonly onRateLimited: (counters: Readonly<GateCounters>) => void = () => undefined,
  ) {
    this.bucket = new TokenBucket(limits.packetsPerSecond, limits.packetBurst, Date.now());
  }

  /** Call for every datagram read; false: drop it (only when reads cannot be paused). */
  admit(): boolean {
    if (this.paused) {
      // libuv read it before the pause took effect (cannot happen with recvStop), or pausing is unavailable.
      this.counters.dropped++;
      return false;
    }
    const now = Date.now();
    if (!this.bucket.take(now)) {
      this.counters.rateLimited++;
      this.onRateLimited(this.counters);
      this.pause(Math.max(1, this.bucket.msUntilToken(now)));
      return true; // already read: handle it, then read nothing until a token is back
    }
    const current = currentTurn();
    if (current !== this.turnSeen) {
      this.turnSeen = current;
      this.inTurn = 0;
    }
    if (++this.inTurn >= this.limits.packetsPerTurn) this.pause(0);
    return true;
  }

  private pause(ms: number): void {
    if (!setReceiving(this.socket, false)) {
      // No pausing: drop until the delay is over (admit() sees paused).
      this.paused = true;
    } else {
      this.paused = false;
    }
    const resume = (): void => {
      this.timer = null;
      this.paused = false;
      this.inTurn = 0;
      if (!this.closed) setReceiving(this.socket, true);
    };
    if (ms === 0) {
      setImmediate(resume);
    } else {
      this.timer = setTimeout(resume, ms);
    }
  }

  /** Stops timers (call before closing the socket). */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
