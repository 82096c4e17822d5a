// The `discover` subcommand: enters the pod's network namespace (setns, before any netlink socket) and prints the PodState JSON.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from './cli.js';
import { DEFAULT_NETWORK_INFO, DEFAULT_NETWORK_STATUS, DEFAULT_RESOLV_CONF, discoverPodState, type DiscoverOptions } from './discover.js';
import { createNetlinkDriver } from './drivers/netlink-driver.js';
import { InputError } from './errors.js';
import { enterNetns, type NetnsTarget } from './netns.js';

const OPTIONS = {
  netns: { type: 'string' },
  pid: { type: 'string' },
  'resolv-conf': { type: 'string' },
  'network-status': { type: 'string' },
  'network-info': { type: 'string' },
  hostname: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const DISCOVER_USAGE = `Usage: virt-net-agent discover [--netns PATH | --pid PID] [--resolv-conf FILE]
                              [--network-status FILE] [--network-info FILE] [--hostname NAME]

Prints the pod's network state as JSON (what "plan --pod" reads): every link with its addresses, the main-table
routes, resolv.conf, the hostname, and the Multus network-status / KubeVirt network-info downward-API files when
present. Read-only: it changes nothing.

  --netns PATH            the pod's network namespace file, e.g. /var/run/netns/NAME (default: the current one)
  --pid PID               the virt-launcher PID: uses /proc/PID/ns/net, and reads the files below through
                          /proc/PID/root (so resolv.conf and podinfo are the pod's own)
  --resolv-conf FILE      default ${DEFAULT_RESOLV_CONF}; a missing file gives ""
  --network-status FILE   default ${DEFAULT_NETWORK_STATUS}: the annotation's JSON, or a downward-API
                          annotations file with a k8s.v1.cni.cncf.io/network-status="..." line
  --network-info FILE     default ${DEFAULT_NETWORK_INFO} (kubevirt.io/network-info, same two formats)
  --hostname NAME         default: this process's hostname (with --pid: /proc/PID/root/etc/hostname if present)

The namespace is entered with setns(2) on the main thread before any netlink socket is opened.

Exit status: 0 success; 2 bad flags or input (e.g. no such namespace); 1 internal error.
`;

function parsePid(text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text)) throw new InputError('--pid', `not a process id: ${JSON.stringify(text)}`);
  return Number(text);
}

function nonEmpty(value: string | undefined, flag: string): string | undefined {
  if (value === '') throw new InputError(flag, 'needs a value');
  return value;
}

/** The pod's hostname file seen through /proc/PID/root; undefined when unreadable. */
function podHostname(pid: number): string | undefined {
  try {
    const name = readFileSync(`/proc/${pid}/root/etc/hostname`, 'utf8').trim();
    return name === '' ? undefined : name;
  } catch {
    return undefined;
  }
}

/** Runs `discover` with the arguments after the subcommand name; throws AgentError (InputError) for bad input. */
export async function runDiscover(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
  if (values.help === true) {
    process.stdout.write(DISCOVER_USAGE);
    return 0;
  }
  const netnsPath = nonEmpty(values.netns, '--netns');
  const pidText = nonEmpty(values.pid, '--pid');
  if (netnsPath !== undefined && pidText !== undefined) throw new InputError('--pid', 'give either --netns or --pid, not both');
  const pid = pidText !== undefined ? parsePid(pidText) : undefined;
  const root = pid !== undefined ? `/proc/${pid}/root` : '';

  const hostname = nonEmpty(values.hostname, '--hostname') ?? (pid !== undefined ? podHostname(pid) : undefined);
  const opts: DiscoverOptions = {
    resolvConfPath: nonEmpty(values['resolv-conf'], '--resolv-conf') ?? `${root}${DEFAULT_RESOLV_CONF}`,
    networkStatusPath: nonEmpty(values['network-status'], '--network-status') ?? `${root}${DEFAULT_NETWORK_STATUS}`,
    networkInfoPath: nonEmpty(values['network-info'], '--network-info') ?? `${root}${DEFAULT_NETWORK_INFO}`,
    ...(hostname !== undefined ? { hostname } : {}),
  };

  const target: NetnsTarget | undefined = netnsPath !== undefined ? { netnsPath } : pid !== undefined ? { pid } : undefined;
  // Before the driver exists: its netlink socket must be born inside the pod's namespace.
  if (target !== undefined) enterNetns(target);
  const driver = createNetlinkDriver();
  try {
    const state = await discoverPodState(driver, opts);
    process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
    return 0;
  } finally {
    driver.close();
  }
}

/** One line for the command list in `help` (agent/cli.ts's COMMANDS entry). */
export const DISCOVER_SUMMARY = "print the pod's network state (links, addresses, routes, resolv.conf, Multus status) as JSON";

/** For agent/cli.ts: `load: async () => (await import('./cmd-discover.js')).discoverCommand`. */
export const discoverCommand: Command = { usage: DISCOVER_USAGE, run: runDiscover };
