// The resident CNI plugin process: accepts shim connections on a unix socket, runs each invocation through handleCniInvocation, answers.
//
// Why resident: a runtime execs a CNI plugin per ADD/DEL, and a cold Node start (~120 ms here) alone is far more than
// the reference plugins' whole ADD; the static shim in /opt/cni/bin costs ~1 ms and forwards here instead.
//
// Invocations run one at a time, in arrival order: the plugin enters pod network namespaces with setns(2) on the main
// thread, so two interleaved invocations could see each other's namespace across an await. Connections are accepted
// and read concurrently; only the handler calls are queued. A connection that never completes its request is dropped
// after REQUEST_TIMEOUT_MS; a handler that throws is answered with a spec error (code 100) instead of a dead daemon.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AgentConfig } from './agent-config.js';
import { cniError, handleCniInvocation, type CniInvocation, type CniOutcome } from './invocation.js';
import { decodeRequest, encodeResponse, FramingError } from './framing.js';

export type CniHandler = (invocation: CniInvocation) => Promise<CniOutcome>;

export interface CniDaemonOptions {
  readonly socketPath: string;
  readonly logger: Logger;
  /** The admin's configuration every invocation runs under (loaded once by cni-daemon). */
  readonly agent: AgentConfig;
  /** Defaults to the plugin itself under `agent`; tests pass stand-ins. */
  readonly handler?: CniHandler;
}

export interface CniDaemon {
  readonly socketPath: string;
  /** Invocations answered so far. */
  readonly served: () => number;
  /** Stops accepting, waits for queued invocations to be answered, closes the socket. */
  close(): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 30_000;

/** Error codes 100+ are the plugin's own (SPEC.md, "Error"): 100 = the daemon failed inside the plugin. */
const INTERNAL_ERROR_CODE = 100;

export async function startCniDaemon(options: CniDaemonOptions): Promise<CniDaemon> {
  const log = options.logger;
  const warn = (message: string, fields: Readonly<Record<string, unknown>>): void => log.warn(fields, message);
  const handler = options.handler ?? ((invocation: CniInvocation) => handleCniInvocation(invocation, options.agent, warn));
  let queue: Promise<unknown> = Promise.resolve();
  let served = 0;
  let seq = 0;

  const runQueued = (invocation: CniInvocation): Promise<CniOutcome> => {
    const result = queue.then(async () => {
      try {
        return await handler(invocation);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.error({ err: message }, 'cni invocation failed inside the plugin');
        return cniError(INTERNAL_ERROR_CODE, 'virt-net-agent cni-daemon: internal error', message);
      }
    });
    queue = result.catch(() => undefined);
    return result;
  };

  const onConnection = (socket: Socket): void => {
    const id = ++seq;
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const started = process.hrtime.bigint();
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => {
      if (!done) log.warn({ conn: id, bytes: received }, 'shim connection timed out before a complete request');
      socket.destroy();
    });
    socket.on('error', (err) => log.warn({ conn: id, err: err.message }, 'shim connection error'));
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      chunks.push(chunk);
      received += chunk.length;
      let invocation: CniInvocation | null;
      try {
        invocation = decodeRequest(chunks.length === 1 ? chunk : Buffer.concat(chunks));
      } catch (err) {
        done = true;
        log.warn({ conn: id, err: err instanceof FramingError ? err.message : String(err) }, 'malformed shim request');
        socket.destroy();
        return;
      }
      if (invocation === null) return;
      done = true;
      socket.setTimeout(0);
      const env = invocation.env;
      void runQueued(invocation).then((outcome) => {
        served++;
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        log.info(
          { conn: id, command: env['CNI_COMMAND'], containerId: env['CNI_CONTAINERID'], ifname: env['CNI_IFNAME'], exitCode: outcome.exitCode, ms: Math.round(ms * 100) / 100 },
          'cni invocation',
        );
        socket.end(encodeResponse(outcome));
      });
    });
  };

  const server: Server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err: err.message }, 'cni-daemon socket error'));

  return {
    socketPath: options.socketPath,
    served: () => served,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await queue;
    },
  };
}
