// The metrics endpoint's address syntax (HOST:PORT), apart from the HTTP server so a command can check its flags without loading it.
import { isIP } from 'node:net';
import { InputError } from '../plan/errors.js';

export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}

/** HOST:PORT as written: an IPv4 address or nothing (every address), or an IPv6 address in brackets; the port. */
export const METRICS_ADDRESS_SYNTAX = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]*)):(\d{1,5})$/;

/** "127.0.0.1:9100", "[::1]:9100", ":9100" (every address); the field names the flag or setting in errors. */
export function parseMetricsAddress(text: string, field: string): MetricsAddress {
  const m = METRICS_ADDRESS_SYNTAX.exec(text);
  if (m === null) throw new InputError(field, `must be HOST:PORT (e.g. 127.0.0.1:9100, [::1]:9100, :9100), got ${JSON.stringify(text)}`);
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (host !== '' && isIP(host) === 0) throw new InputError(field, `${JSON.stringify(host)} is not an IP address`);
  // 0: a free port the system picks (the "metrics listening" log line names it).
  if (port > 65535) throw new InputError(field, `port must be 0-65535, got ${port}`);
  return { host, port };
}

