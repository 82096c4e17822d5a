// The resident CNI plugin process: accepts shim connections on a unix socket, runs each invocation through handleCniInvocation, answers.
//
// Why resident: a runtime execs a CNI plugin per ADD/DEL, and a cold Node start (~120 ms here) alone is far more than
// the reference plugins' whole ADD; the static shim in /opt/cni/bin costs ~1 ms and forwards here instead.
//
// Invocations for different pods run concurrently: the kernel is reached only inside synchronous NetnsScope.run
// calls, so between awaits the thread is back in the daemon's own namespace (invocation-locks.ts says why that is
// enough and what is serialised: one pod's invocations, and a GC with its network's). Each invocation has a deadline
// (invocationTimeoutMs): past it the shim is answered with code 11 ("try again later"), while the work that overran
// keeps its locks until it really ends, so nothing interleaves with it. Who may connect is checked per connection
// (daemon-socket.ts). A connection that never completes its request is dropped after REQUEST_TIMEOUT_MS; a handler
// that throws is answered with a spec error (code 100, no stack trace) instead of a dead daemon.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AgentConfig } from './agent-config.js';
import { listenRestricted, peerAllowed, peerCredentials } from './daemon-socket.js';
import { cniError, handleCniInvocation, type CniInvocation, type CniOutcome } from './invocation.js';
import { acquireAll, LockTable, locksFor } from './invocation-locks.js';
import { encodeResponse, FramingError, RequestAccumulator } from './framing.js';
import { CNI_CODES } from './errors.js';

export type CniHandler = (invocation: CniInvocation) => Promise<CniOutcome>;

export interface CniDaemonOptions {
  readonly socketPath: string;
  readonly logger: Logger;
  /** The admin's configuration every invocation runs under (loaded once by cni-daemon). */
  readonly agent: AgentConfig;
  /** Defaults to the plugin itself under `agent`; tests pass stand-ins. */
  readonly handler?: CniHandler;
  /** Called for every answered invocation (metrics): its command, the answer, the seconds from the connection to the answer. */
  readonly onAnswered?: (command: string, outcome: CniOutcome, seconds: number) => void;
}

export interface CniDaemon {
  readonly socketPath: string;
  /** Invocations answered so far. */
  readonly served: () => number;
  /** Stops accepting, waits for running invocations (overrun ones too) to end, closes the socket. */
  close(): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 30_000;

/** Error codes 100+ are the plugin's own (SPEC.md, "Error"): 100 = the daemon failed inside the plugin. */
const INTERNAL_ERROR_CODE = 100;

export async function startCniDaemon(options: CniDaemonOptions): Promise<CniDaemon> {
  const log = options.logger;
  const agent = options.agent;
  const warn = (message: string, fields: Readonly<Record<string, unknown>>): void => log.warn(fields, message);
  const handler = options.handler ?? ((invocation: CniInvocation) => handleCniInvocation(invocation, agent, warn));
  const locks = new LockTable();
  /** Every invocation still running (answered or not), so close() can wait for them. */
  const running = new Set<Promise<unknown>>();
  let served = 0;
  let seq = 0;

  const runGuarded = async (invocation: CniInvocation): Promise<CniOutcome> => {
    try {
      return await handler(invocation);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.error({ err: message, stack: err instanceof Error ? err.stack : undefined }, 'cni invocation failed inside the plugin');
      return cniError(INTERNAL_ERROR_CODE, 'virt-net-agent cni-daemon: internal error', message);
    }
  };

  /** Runs the invocation under its locks; answers by the deadline whether or not the work has ended. */
  const runInvocation = (invocation: CniInvocation, conn: number): Promise<CniOutcome> => {
    const work = (async () => {
      const release = await acquireAll(locks, locksFor(invocation.env, invocation.stdin));
      try {
        return await runGuarded(invocation);
      } finally {
        release();
      }
    })();
    running.add(work);
    void work.finally(() => running.delete(work));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<CniOutcome>((resolve) => {
      timer = setTimeout(() => {
        const env = invocation.env;
        log.warn({ conn, command: env['CNI_COMMAND'], containerId: env['CNI_CONTAINERID'], ifname: env['CNI_IFNAME'], deadlineMs: agent.invocationTimeoutMs }, 'cni invocation overran its deadline: answered "try again later", the work keeps its pod until it ends');
        resolve(cniError(CNI_CODES.tryAgainLater, `virt-net-agent cni-daemon: the invocation did not finish within invocationTimeoutMs (${agent.invocationTimeoutMs} ms); try again later`));
      }, agent.invocationTimeoutMs);
    });
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  };

  const onConnection = (socket: Socket): void => {
    const id = ++seq;
    socket.on('error', (err) => log.warn({ conn: id, err: err.message }, 'shim connection error'));
    const peer = peerCredentials(socket);
    if (!peerAllowed(peer, agent.socketGroup)) {
      log.warn({ conn: id, peer: peer ?? 'unknown', socketGroup: agent.socketGroup }, 'shim connection refused: the peer is neither root nor in socketGroup');
      socket.destroy();
      return;
    }
    const request = new RequestAccumulator();
    let done = false;
    const started = process.hrtime.bigint();
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => {
      if (!done) log.warn({ conn: id, bytes: request.bytes }, 'shim connection timed out before a complete request');
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      let invocation: CniInvocation | null;
      try {
        invocation = request.push(chunk);
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
      void runInvocation(invocation, id).then((outcome) => {
        served++;
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        log.info(
          { conn: id, command: env['CNI_COMMAND'], containerId: env['CNI_CONTAINERID'], ifname: env['CNI_IFNAME'], exitCode: outcome.exitCode, ms: Math.round(ms * 100) / 100 },
          'cni invocation',
        );
        options.onAnswered?.(env['CNI_COMMAND'] ?? '', outcome, ms / 1000);
        socket.end(encodeResponse(outcome));
      });
    });
  };

  const server: Server = createServer(onConnection);
  await listenRestricted(server, options.socketPath, agent.socketGroup);
  server.on('error', (err) => log.error({ err: err.message }, 'cni-daemon socket error'));

  return {
    socketPath: options.socketPath,
    served: () => served,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}
