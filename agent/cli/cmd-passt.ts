// The `passt` subcommand: runs and supervises passt in the pod netns for the VMI's passtBinding interface (libvirt < 11.1, no <backend type='passt'>).
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { passtPortForwards } from '../../bindings/passt.js';
import type { Command } from './command.js';
import { AgentError, InputError } from '../plan/errors.js';
import { readDocument } from './input.js';
import { rejectRepeatedFlags, withFlag } from './plan-flags.js';
import { parseVmiObject } from '../plan/vmi-shape.js';

const OPTIONS = {
  vmi: { type: 'string' },
  netns: { type: 'string' },
  'socket-dir': { type: 'string' },
  'log-file': { type: 'string' },
  runas: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `Usage: virt-net-agent passt --vmi FILE --netns PATH --socket-dir DIR [--log-file FILE] [--runas UID:GID]

Runs passt in the pod's network namespace for the VMI's passtBinding interface, for libvirt older than 11.1
(Debian 12's libvirt 9.0 rejects <backend type='passt'/>): the guest attaches with qemu's
"-netdev stream,addr.type=unix,addr.path=DIR/passt.socket" (see: virt-net-agent help domain).
The VMI's ports become passt's -t/-u lists (all ports when the interface lists none; Istio's Envoy ports are
excluded when the VMI has sidecar.istio.io/inject: "true"). passt runs in the foreground, logs to its file,
and is restarted with backoff if it dies. Once the socket exists, one JSON line {socket, logFile, pid} is printed
on stdout. SIGTERM/SIGINT stop passt and exit 0.

  --vmi FILE          the VirtualMachineInstance, YAML or JSON
  --netns PATH        the pod's network namespace file (/proc/PID/ns/net or /run/netns/NAME)
  --socket-dir DIR    created if missing and given to the runas user (passt drops privileges before binding)
  --log-file FILE     default DIR/passt.log
  --runas UID:GID     the user passt runs as (default 65534:65534, nobody)

Exit status: 0 after a signal; 2 bad flags or input; 1 internal error.
`;

/** Binding every forwarded port comes before the socket; generous for a loaded node. */
const READY_TIMEOUT_MS = 120_000;

/** Enough descriptors for every non-ephemeral TCP and UDP port plus passt's own. */
const ALL_PORTS_NOFILE = 131_072;

function parseRunAs(text: string | undefined): { uid: number; gid: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{1,10}):(\d{1,10})$/.exec(text);
  if (m === null) throw new InputError('--runas', `expected UID:GID (numbers), got ${JSON.stringify(text)}`);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

async function run(args: readonly string[]): Promise<number> {
  const { values, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  rejectRepeatedFlags(tokens);
  const need = (value: string | undefined, flag: string): string => {
    if (value === undefined || value === '') throw new InputError(flag, 'is required (see: virt-net-agent help passt)');
    return value;
  };
  const vmiPath = need(values.vmi, '--vmi');
  const netnsPath = need(values.netns, '--netns');
  // passt is started through nsenter: check the namespace first as every --netns is (nsfs, network, not the node's).
  const { openNetnsScope } = await import('../apply/netns.js');
  openNetnsScope({ netnsPath }).close();
  const socketDir = need(values['socket-dir'], '--socket-dir');
  const runAs = parseRunAs(values.runas);
  const document = await readDocument(vmiPath, '--vmi');
  const parsed = withFlag('--vmi', () => parseVmiObject(document));
  const interfaces = parsed.spec.domain?.devices?.interfaces ?? [];
  const index = interfaces.findIndex((iface) => iface.passtBinding !== undefined);
  const iface = interfaces[index];
  if (iface === undefined) throw new InputError('--vmi', 'spec.domain.devices.interfaces: no interface uses passtBinding');
  const istio = parsed.metadata.annotations?.['sidecar.istio.io/inject']?.toLowerCase() === 'true';
  const { passtPortArgs } = await import('../passt/port-specs.js');
  const portArgs = passtPortArgs(passtPortForwards(iface, istio));
  // "all" (or "all except") binds ~32k sockets per protocol; raise the fd limit so passt can hold them.
  const forwardsAll = portArgs.some((arg) => arg === 'all' || arg.startsWith('~'));

  const log = pino({ name: 'virt-net-agent', base: { cmd: 'passt' } }, pino.destination(2));
  const { startPasstSupervisor } = await import('../passt/supervisor.js');
  const supervisor = await startPasstSupervisor({
    netnsPath,
    socketDir,
    portArgs,
    log,
    ...(forwardsAll ? { nofile: ALL_PORTS_NOFILE } : {}),
    ...(values['log-file'] !== undefined ? { logFile: values['log-file'] } : {}),
    ...(runAs !== undefined ? { runAs } : {}),
  });
  let signalled: (() => void) | undefined;
  const stopRequested = new Promise<void>((resolve) => {
    signalled = resolve;
  });
  const onSignal = (): void => signalled?.();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    await Promise.race([supervisor.ready(READY_TIMEOUT_MS), stopRequested]);
  } catch (err) {
    await supervisor.stop();
    throw new AgentError('passt', err instanceof Error ? err.message : String(err));
  }
  process.stdout.write(`${JSON.stringify({ socket: supervisor.socketPath, logFile: supervisor.logFile, pid: supervisor.pid() ?? null })}\n`);
  await stopRequested;
  await supervisor.stop();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return 0;
}

export const passtCommand: Command = { usage: USAGE, run };
