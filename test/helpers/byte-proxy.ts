// Test helper: byte pipes between unix sockets and TCP, like KubeVirt's migration proxies (run inside a netns as its own process).
//
// `node dist/test/helpers/byte-proxy.js LISTEN CONNECT [LISTEN CONNECT …]`, each end `unix:/path` or `tcp:host:port`.
// Every connection accepted on LISTEN gets its own connection to CONNECT, opened only then (a migration socket the
// target qemu has not created yet is fine until the source connects). Prints one "proxy listening" line when every
// listener is up, and "proxy conn LISTEN -> CONNECT" per connection.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export type Endpoint = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

export function parseEndpoint(text: string): Endpoint {
  if (text.startsWith('unix:')) return { kind: 'unix', path: text.slice(5) };
  const m = /^tcp:(.+):(\d+)$/.exec(text);
  if (!m || m[1] === undefined || m[2] === undefined) throw new Error(`byte-proxy: ${JSON.stringify(text)} is neither unix:/path nor tcp:host:port`);
  return { kind: 'tcp', host: m[1], port: Number(m[2]) };
}

function connect(to: Endpoint): Socket {
  return to.kind === 'unix' ? createConnection({ path: to.path }) : createConnection({ host: to.host, port: to.port, noDelay: true });
}

/** Listens on `from` and pipes each connection to a fresh connection to `to`. */
export function startProxy(from: Endpoint, to: Endpoint, onConn: () => void = () => undefined): Promise<Server> {
  const server = createServer({ noDelay: true }, (inbound) => {
    const outbound = connect(to);
    onConn();
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const close = (): void => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', close).on('close', close);
    outbound.on('error', close).on('close', close);
  });
  if (from.kind === 'unix') rmSync(from.path, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const ready = (): void => {
      server.off('error', reject);
      resolve(server);
    };
    if (from.kind === 'unix') server.listen(from.path, ready);
    else server.listen(from.port, from.host, ready);
  });
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.length === 0 || argv.length % 2 !== 0) throw new Error('usage: byte-proxy LISTEN CONNECT [LISTEN CONNECT …]');
  const servers: Server[] = [];
  for (let i = 0; i < argv.length; i += 2) {
    const listen = argv[i] ?? '';
    const target = argv[i + 1] ?? '';
    servers.push(await startProxy(parseEndpoint(listen), parseEndpoint(target), () => process.stdout.write(`proxy conn ${listen} -> ${target}\n`)));
  }
  process.stdout.write('proxy listening\n');
  const stop = (): void => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
