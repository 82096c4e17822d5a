// Process-wide counts of the DHCPv4/DHCPv6 messages the servers handled and the router advertisements they sent, for the metrics endpoint.
//
// The servers (server-v4.ts, v6-server.ts, ra-server.ts) count here whichever process runs them (cni-daemon, serve,
// sidecar --serve); a metrics registry reads the totals when it is scraped. A counter per (family, type, result) in a
// Map keyed by one short string: a key string and a lookup per message, nothing else.

export type DhcpFamily = 'v4' | 'v6';
/** replied: an answer was sent; ignored: not for us or nothing to answer; logged: RELEASE/DECLINE; dropped: undecodable. */
export type DhcpResult = 'replied' | 'ignored' | 'logged' | 'dropped';

const messages = new Map<string, number>();
let advertisements = 0;

export function countDhcpMessage(family: DhcpFamily, type: string, result: DhcpResult): void {
  const key = `${family}\u0000${type}\u0000${result}`;
  messages.set(key, (messages.get(key) ?? 0) + 1);
}

export function countRouterAdvertisement(): void {
  advertisements++;
}

/** The totals so far: one entry per (family, message type, result) seen, and the advertisements sent. */
export function messageCounts(): { readonly dhcp: readonly { family: DhcpFamily; type: string; result: DhcpResult; count: number }[]; readonly routerAdvertisements: number } {
  const dhcp = [...messages].map(([key, count]) => {
    const [family, type, result] = key.split('\u0000') as [DhcpFamily, string, DhcpResult];
    return { family, type, result, count };
  });
  return { dhcp, routerAdvertisements: advertisements };
}
