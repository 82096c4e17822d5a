// The HTTP endpoint Prometheus scrapes: GET /metrics on the configured address, nothing else (plain HTTP, read-only).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { MetricsAddress } from './address.js';

export { parseMetricsAddress, type MetricsAddress } from './address.js';

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
