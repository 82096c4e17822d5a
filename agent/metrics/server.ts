// The HTTP endpoint Prometheus scrapes: GET /metrics on the configured address, nothing else (plain HTTP, read-only).
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { Registry } from 'prom-client';
import { InputError } from '../plan/errors.js';

export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1:9100", "[::1]:9100", ":9100" (every address); the field names the flag or setting in errors. */
export function parseMetricsAddress(text: string, field: string): MetricsAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]*)):(\d{1,5})$/.exec(text);
  if (m === null) throw new InputError(field, `must be HOST:PORT (e.g. 127.0.0.1:9100, [::1]:9100, :9100), got ${JSON.stringify(text)}`);
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (host !== '' && isIP(host) === 0) throw new InputError(field, `${JSON.stringify(host)} is not an IP address`);
  if (port < 1 || port > 65535) throw new InputError(field, `port must be 1-65535, got ${port}`);
  return { host, port };
}

export interface MetricsServer {
  /** The bound address (the port when 0 was asked for). */
  readonly address: MetricsAddress;
  close(): Promise<void>;
}

export async function startMetricsServer(address: MetricsAddress, registry: Registry): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  // A scraper holds one connection; nobody else gets to keep sockets open for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host === '' ? undefined : address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
  return {
    address: { host: address.host, port },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
