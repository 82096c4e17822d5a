// The handle every long-running serve-time service (DHCPv4, DHCPv6, router advertiser) returns so `serve` can stop it.

export interface RunningService {
  /** What is served and where, e.g. "dhcpv4 k6t-eth0"; used in logs. */
  readonly name: string;
  /** Stops the service and releases its sockets/timers; idempotent, never rejects. */
  close(): Promise<void>;
}
