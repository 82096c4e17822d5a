// The `serve` subcommand (virt-launcher's phase 2 DHCP): starts every planned per-network service from the state dir and runs until SIGTERM/SIGINT.
//
// serve never touches links and never recomputes the plan: what it serves is what `setup` recorded in the state dir
// (per network: the bridge and the planned `dhcp` / `dhcpv6` sections), so a restarted serve resumes exactly. It runs
// as the launcher's user and reads the root-owned read-only copy serve.json (docs/security.md).
import { parseMetricsAddress } from '../metrics/address.js';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Command } from './command.js';
import { InputError } from '../plan/errors.js';
import { rejectRepeatedFlags } from './plan-flags.js';
import { podTargetFromFlags } from './pod-target.js';
import { SERVE_NODE_FLAGS, SERVE_REEXEC_ENV, reexecWithServeHeap } from './serve-heap.js';
import { DEFAULT_STATE_ROOT, LAUNCHER_FILE, readLauncherView, STATE_FILE, type LauncherView } from '../apply/state-dir.js';
import { planned, ServingCore, type ServedNetwork } from '../serve/core.js';

const OPTIONS = {
  'state-dir': { type: 'string' },
  netns: { type: 'string' },
  pid: { type: 'string' },
  'metrics-address': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const LOG_LEVEL_ENV = 'VIRT_NET_AGENT_LOG_LEVEL';

const SERVE_USAGE = `Usage: virt-net-agent serve [--state-dir DIR] [--netns PATH | --pid PID] [--metrics-address HOST:PORT]

Serves the guest from what "setup" recorded: per planned interface a DHCPv4 server, and where planned a DHCPv6
server and router advertisements, each bound to its bridge (SO_BINDTODEVICE). Runs until SIGTERM or SIGINT, then stops cleanly (exit 0). Never changes links; a restarted
serve resumes from the state dir. Logs are pino JSON lines on stdout, one per DHCP exchange.

  --state-dir DIR   the VMI's state folder, or the root holding exactly one (default ${DEFAULT_STATE_ROOT})
  --netns PATH      the pod's network namespace file (default: the current one)
  --pid PID         the virt-launcher PID: serve inside /proc/PID/ns/net
  --metrics-address HOST:PORT
                    serve Prometheus metrics (DHCP messages, router advertisements; GET /metrics) there, in the
                    process's own network namespace (docs/metrics.md); default off

Once its input is checked, serve re-executes itself (same PID and arguments) as "node ${SERVE_NODE_FLAGS.join(' ')} …":
a small V8 young generation and no GC/compiler threads keep its memory flat under a steady stream of requests.

Environment: ${LOG_LEVEL_ENV}=debug|info|warn (default info; debug also logs ignored packets).
             ${SERVE_REEXEC_ENV}=0 keeps node's defaults (no re-exec).
Exit status: 0 stopped by a signal; 2 bad flags, or no state to serve; 3 a planned bridge is missing; 1 internal error.
`;

/** DIR itself when it is a VMI folder (serve.json, or an older setup's state.json), else its single VMI folder. */
function findStateDir(root: string): { readonly dir: string; readonly view: LauncherView } {
  const direct = readLauncherView(root);
  if (direct !== null) return { dir: root, view: direct };
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError('--state-dir', code === 'ENOENT' ? `no such directory ${root} (run setup first)` : `cannot read ${root}: ${code}`);
  }
  const vmis = entries.filter((entry) => existsSync(join(root, entry, LAUNCHER_FILE)) || existsSync(join(root, entry, STATE_FILE))).sort();
  if (vmis.length === 0) throw new InputError('--state-dir', `no state in ${root} (run setup first)`);
  if (vmis.length > 1) throw new InputError('--state-dir', `several VMIs in ${root} (${vmis.join(', ')}): pass the VMI's own folder`);
  const dir = join(root, vmis[0] ?? '');
  const view = readLauncherView(dir);
  if (view === null) throw new InputError('--state-dir', `no state in ${dir} (run setup first)`);
  return { dir, view };
}

function servedNetworks(state: LauncherView): ServedNetwork[] {
  return Object.entries(state.networks).map(([name, network]) => ({ name, state: network }));
}

/**
 * pino's time function for serve: `,"timestamp":"…"` with what new Date().toISOString() gives (RFC 3339, UTC, ms).
 * The date and time up to the second are formatted once per second: toISOString costs ~0.45 µs here (V8 formats it
 * with snprintf), a third of a DHCP exchange line.
 */
export function rfc3339Timestamp(): () => string {
  let second = Number.NaN;
  let head = '';
  return () => {
    const now = Date.now();
    const ms = now % 1000;
    if (now - ms !== second) {
      second = now - ms;
      head = `,"timestamp":"${new Date(second).toISOString().slice(0, 20)}`; // …T12:34:56.
    }
    return head + (ms < 10 ? '00' : ms < 100 ? '0' : '') + ms + 'Z"';
  };
}

/** serve's pino options: KubeVirt-like records (component, level as a word, msg, RFC 3339 timestamp, the VMI's name/namespace/uid). */
export function serveLoggerOptions(vmi: LauncherView['vmi'], level: string): LoggerOptions {
  return {
    level,
    messageKey: 'msg',
    base: { component: 'virt-net-agent', kind: 'VirtualMachineInstance', name: vmi.name, namespace: vmi.namespace, uid: vmi.uid },
    timestamp: rfc3339Timestamp(),
    formatters: { level: (label) => ({ level: label }) },
  };
}

function createLogger(state: LauncherView): Logger {
  const level = process.env[LOG_LEVEL_ENV] ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) {
    throw new InputError(LOG_LEVEL_ENV, `expected fatal, error, warn, info, debug, trace or silent, got ${JSON.stringify(level)}`);
  }
  return pino(serveLoggerOptions(state.vmi, level));
}

/** Resolves with the signal that asked us to stop. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(signal);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

async function runServe(args: readonly string[]): Promise<number> {
  const { values, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
  rejectRepeatedFlags(tokens);
  if (values.help === true) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const root = values['state-dir'] ?? DEFAULT_STATE_ROOT;
  if (root === '') throw new InputError('--state-dir', 'needs a value');
  const { target } = podTargetFromFlags({ netns: values.netns, pid: values.pid });
  const metricsAddress = values['metrics-address'] === undefined ? null : parseMetricsAddress(values['metrics-address'], '--metrics-address');
  const { dir, view: state } = findStateDir(root);
  const networks = servedNetworks(state);
  if (!networks.some(planned)) {
    throw new InputError('--state-dir', `nothing to serve in ${dir}: no network has a planned DHCP server`);
  }
  // Input is valid: now (before any socket or namespace switch) become `node SERVE_NODE_FLAGS …` if not already.
  const reexecFailure = reexecWithServeHeap();
  const logger = createLogger(state);
  if (reexecFailure !== null) logger.warn({ reason: reexecFailure }, `serving with node's defaults: re-exec with ${SERVE_NODE_FLAGS.join(' ')} failed`);
  // Signals are caught from here on, so a SIGTERM during start-up still ends in a clean stop.
  const stopped = untilSignal();
  // The sockets are created inside the pod's namespace (the serving core enters it for each synchronous creation);
  // the process itself stays where it was started.
  const core = new ServingCore({ logger });
  const served = await core.add({ id: state.vmi.uid, netns: target ?? null, networks });
  logger.info({ services: served.services, stateDir: dir, nodeFlags: process.execArgv }, 'serving');
  let metrics: { close(): Promise<void> } | null = null;
  if (metricsAddress !== null) {
    // Loaded only when asked for: a serve per VM stays as small as before otherwise.
    const [{ Registry }, { registerServingMetrics }, { startMetricsServer }] = await Promise.all([import('prom-client'), import('../metrics/serving-metrics.js'), import('../metrics/server.js')]);
    const registry = new Registry();
    registerServingMetrics(registry);
    const server = await startMetricsServer(metricsAddress, registry);
    metrics = server;
    logger.info({ address: `${server.address.host || '*'}:${server.address.port}` }, 'metrics listening');
  }
  const signal = await stopped;
  logger.info({ signal }, 'stopping');
  await metrics?.close();
  await core.close();
  logger.info('stopped');
  return 0;
}

export const serveCommand: Command = { usage: SERVE_USAGE, run: runServe };
