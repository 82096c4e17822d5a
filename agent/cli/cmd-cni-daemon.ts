// The `cni-daemon` subcommand: the resident half of the CNI plugin; the /opt/cni/bin shim forwards every invocation to its socket.
import { lstatSync, unlinkSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Command } from './command.js';
import { InputError } from '../plan/errors.js';
import { rejectRepeatedFlags } from './plan-flags.js';
import { DEFAULT_AGENT_CONFIG_PATH, defaultAgentConfig, loadAgentConfig } from '../cni/agent-config.js';
import { parseMetricsAddress } from '../metrics/address.js';
import type { MetricsServer } from '../metrics/server.js';

/** The same variable as serve's (cmd-serve.ts); not imported from there, which would load serve's code. */
const LOG_LEVEL_ENV = 'VIRT_NET_AGENT_LOG_LEVEL';

export const DEFAULT_CNI_SOCKET = defaultAgentConfig().socket;

const OPTIONS = {
  config: { type: 'string' },
  socket: { type: 'string' },
  'metrics-address': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `Usage: virt-net-agent cni-daemon [--config FILE] [--socket PATH] [--metrics-address HOST:PORT]

Runs the CNI plugin resident. The static shim installed as /opt/cni/bin/virt-net-agent forwards each invocation
(its environment and stdin) to this socket and prints the answer, so an ADD costs no Node start; with no daemon
listening the shim runs the self-contained fallback executable instead (same answers, slower). Invocations for
different pods run concurrently, those for one pod one after another; one that runs past invocationTimeoutMs is
answered with CNI error 11. Logs are pino JSON lines on stdout, one per invocation.

It also serves the guests (unless the configuration says serveDhcp: false): DHCPv4, DHCPv6 and router
advertisements for every attachment from its ADD until its DEL or GC, in each pod's namespace, from one event loop.
At start it serves every attachment recorded under the state root again (also those the fallback executable
plumbed), without touching a link; one whose namespace is gone is reported and left to GC. SIGTERM closes the
sockets without withdrawing the guests' routes, so the next daemon (a restart, a rolling update) takes over.

  --config FILE   the agent configuration: state root, kubeconfig, vmiDir, socket, limits (docs/cni.md); default
                  ${DEFAULT_AGENT_CONFIG_PATH}, built-in defaults when that is absent. Read once at start; as root, a
                  file not owned by root or writable by group/others is refused.
  --socket PATH   the unix socket to listen on (default: the configuration's socket, else ${DEFAULT_CNI_SOCKET}).
                  Its directory must be root's with mode 0700 (0710 and the group with socketGroup) and is made
                  so when missing; any other is refused. The socket is created under umask 077, mode 0600 (0660
                  with socketGroup); a path that is not a socket is never deleted. Peers must be root or in
                  socketGroup (SO_PEERCRED); others are disconnected and logged.
                  The shim finds it through VIRT_NET_AGENT_CNI_SOCKET or "socket=PATH" in /opt/cni/bin/virt-net-agent.conf.
  --metrics-address HOST:PORT
                  serve Prometheus metrics (GET /metrics, plain HTTP) there, e.g. 127.0.0.1:9101 ([::1]:9101, :9101 =
                  every address); default: the configuration's metricsAddress, else off. docs/metrics.md.

Environment: ${LOG_LEVEL_ENV}=debug|info|warn (default info). VIRT_NET_AGENT_SERVE_REEXEC=0 keeps node's default heap
             (otherwise the daemon re-executes itself, same PID and arguments, with --max-semi-space-size=1
             --single-threaded: a small young generation, no GC/compiler threads; its memory stays flat).
Exit status: 0 stopped by SIGTERM/SIGINT; 2 bad flags, a refused agent configuration, socket directory or socket
path, or another daemon already listens on the socket; 1 internal error.
`;

/**
 * Whether this is the fallback executable (a Node single executable application), not `node script`: there argv[1]
 * is the executable itself (node puts it where a script would be), and `node:sea` says so where it can be imported.
 */
async function runsAsSingleExecutable(): Promise<boolean> {
  if (process.argv[1] === process.execPath) return true;
  try {
    const sea = (await import('node:sea')) as { isSea?: () => boolean };
    return sea.isSea?.() === true;
  } catch {
    return false;
  }
}

export const cniDaemonCommand: Command = {
  usage: USAGE,
  async run(args) {
    const { values, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
    rejectRepeatedFlags(tokens);
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const agent = loadAgentConfig(values.config);
    const socketPath = values.socket ?? agent.socket;
    if (socketPath.length > 107) throw new InputError('--socket', `path of ${socketPath.length} bytes is longer than a unix socket address allows (107)`);
    const metricsText = values['metrics-address'] ?? agent.metricsAddress;
    const metricsAddress = metricsText === null ? null : parseMetricsAddress(metricsText, values['metrics-address'] !== undefined ? '--metrics-address' : `${agent.source ?? 'config'}: metricsAddress`);
    // Input is valid: become `node --max-semi-space-size=1 --single-threaded …` (same PID and arguments) before anything
    // is opened, as serve does (serve-heap.ts); not from the single executable (it takes no node flags on its command line).
    const heap = await import('./serve-heap.js');
    const reexecFailure = (await runsAsSingleExecutable()) ? null : heap.reexecWithNodeFlags(heap.DAEMON_NODE_FLAGS);
    const { prepareSocketPath } = await import('../cni/daemon-socket.js');
    await prepareSocketPath(socketPath, agent.socketGroup);
    const logger = pino({ base: { component: 'virt-net-agent-cni-daemon' }, level: process.env[LOG_LEVEL_ENV] ?? 'info' });
    if (reexecFailure !== null) logger.warn({ reason: reexecFailure }, `running with node's defaults: the re-exec with ${heap.DAEMON_NODE_FLAGS.join(' ')} failed`);
    // Serving first, before anything else starts: a restarted daemon answers its guests again (within the 1 s a
    // client's retransmission waits) before it takes new invocations.
    let serving: import('../cni/serving.js').CniServing | null = null;
    if (agent.serveDhcp) {
      const { CniServing, msSince } = await import('../cni/serving.js');
      serving = new CniServing({ stateRoot: agent.stateRoot, logger });
      const started = process.hrtime.bigint();
      const adopted = await serving.adopt();
      logger.info({ served: adopted.served.length, dropped: adopted.dropped.length, failed: adopted.failed.length, ms: msSince(started) }, 'attachments adopted');
    }
    const { startCniDaemon } = await import('../cni/daemon.js');
    // Link deletions wait for the kernel's grace periods on a thread of their own (drivers/netlink-worker.ts), so a
    // DEL is answered once its links are gone from the pod instead of ~40 ms later; without the thread they block.
    const { setBackgroundNetlink, startNetlinkWorker } = await import('../drivers/netlink-worker.js');
    const worker = await startNetlinkWorker({ onLateError: (err) => logger.warn({ err: err.message }, 'background link deletion failed') }).catch((err: unknown) => {
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'no netlink worker thread: link deletions block the daemon');
      return null;
    });
    setBackgroundNetlink(worker);
    const { handleCniInvocation } = await import('../cni/invocation.js');
    const warn = (message: string, fields: Readonly<Record<string, unknown>>): void => logger.warn(fields, message);
    const plugin = (invocation: import('../cni/spec.js').CniInvocation): Promise<import('../cni/spec.js').CniOutcome> => handleCniInvocation(invocation, agent, warn);
    let observe: ((command: string, outcome: { exitCode: number; stdout: string }, seconds: number) => void) | undefined;
    const daemon = await startCniDaemon({ socketPath, logger, agent, handler: serving === null ? plugin : serving.wrap(plugin), onAnswered: (c, o, seconds) => observe?.(c, o, seconds) });
    let metricsServer: MetricsServer | null = null;
    if (metricsAddress !== null) {
      const { createCniMetrics, cniCode } = await import('../metrics/cni-metrics.js');
      const metrics = createCniMetrics({ stateRoot: agent.stateRoot });
      observe = (command, outcome, seconds) => metrics.observe(command, cniCode(outcome.exitCode, outcome.stdout), seconds);
      const { startMetricsServer } = await import('../metrics/server.js');
      metricsServer = await startMetricsServer(metricsAddress, metrics.registry);
      logger.info({ address: `${metricsServer.address.host || '*'}:${metricsServer.address.port}` }, 'metrics listening');
    }
    logger.info({ socket: socketPath, pid: process.pid, config: agent.source, stateRoot: agent.stateRoot, socketGroup: agent.socketGroup, backgroundDeletes: worker !== null }, 'cni-daemon listening');
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        logger.info({ signal, served: daemon.served() }, 'cni-daemon stopping');
        resolve();
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    await metricsServer?.close();
    await daemon.close();
    await serving?.close({ goodbye: false });
    setBackgroundNetlink(null);
    await worker?.close();
    try {
      // Ours to remove only while it is still a socket (never a file someone put there since).
      if (lstatSync(socketPath).isSocket()) unlinkSync(socketPath);
    } catch {
      // Already gone (removed by hand): nothing to clean.
    }
    return 0;
  },
};
