// Flags shared by the commands that act inside a pod: which network namespace, and where its podinfo files are.
import { DEFAULT_NETWORK_INFO, DEFAULT_NETWORK_STATUS, DEFAULT_RESOLV_CONF, type DiscoverOptions } from '../apply/discover.js';
import { InputError } from '../plan/errors.js';
import type { NetnsTarget } from '../apply/netns.js';

export const POD_TARGET_OPTIONS = {
  netns: { type: 'string' },
  pid: { type: 'string' },
  'resolv-conf': { type: 'string' },
  'network-status': { type: 'string' },
  'network-info': { type: 'string' },
  hostname: { type: 'string' },
} as const;

export const POD_TARGET_USAGE = `  --netns PATH            the pod's network namespace file, e.g. /var/run/netns/NAME (default: the current one)
  --pid PID               the virt-launcher PID: uses /proc/PID/ns/net, and reads the files below through
                          /proc/PID/root (so resolv.conf and podinfo are the pod's own)
  --resolv-conf FILE      default ${DEFAULT_RESOLV_CONF}; a missing file gives ""
  --network-status FILE   default ${DEFAULT_NETWORK_STATUS}: the annotation's JSON, or a downward-API
                          annotations file with a k8s.v1.cni.cncf.io/network-status="..." line
  --network-info FILE     default ${DEFAULT_NETWORK_INFO} (kubevirt.io/network-info, same two formats)
  --hostname NAME         default: this process's hostname (with --pid: the pod's /etc/hostname, else the hostname of
                          /proc/PID/ns/uts; checked to be a hostname)
  With --pid, a file of the pod that is a symlink leading out of the pod's root, a FIFO, a device or larger than its
  cap is refused in one line naming it (docs/security.md).`;

export type PodTargetValues = { readonly [K in keyof typeof POD_TARGET_OPTIONS]?: string | undefined };

function parsePid(text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text)) throw new InputError('--pid', `not a process id: ${JSON.stringify(text)}`);
  return Number(text);
}

function nonEmpty(value: string | undefined, flag: string): string | undefined {
  if (value === '') throw new InputError(flag, 'needs a value');
  return value;
}

/** The namespace to enter (undefined: stay) and where discovery reads the pod's files. */
export function podTargetFromFlags(values: PodTargetValues): { target: NetnsTarget | undefined; discover: DiscoverOptions } {
  const netnsPath = nonEmpty(values.netns, '--netns');
  const pidText = nonEmpty(values.pid, '--pid');
  if (netnsPath !== undefined && pidText !== undefined) throw new InputError('--pid', 'give either --netns or --pid, not both');
  const pid = pidText !== undefined ? parsePid(pidText) : undefined;
  // With --pid the pod's own files are read beneath /proc/PID/root (discover.ts readPodFile: no link out of the pod's
  // root is followed, regular files only, size-capped); a path given by flag is the caller's and read as given.
  const hostname = nonEmpty(values.hostname, '--hostname');
  const resolvConfPath = nonEmpty(values['resolv-conf'], '--resolv-conf');
  const networkStatusPath = nonEmpty(values['network-status'], '--network-status');
  const networkInfoPath = nonEmpty(values['network-info'], '--network-info');
  const discover: DiscoverOptions = {
    ...(pid !== undefined ? { podRoot: `/proc/${pid}/root` } : {}),
    ...(resolvConfPath !== undefined ? { resolvConfPath } : {}),
    ...(networkStatusPath !== undefined ? { networkStatusPath } : {}),
    ...(networkInfoPath !== undefined ? { networkInfoPath } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
  };
  const target: NetnsTarget | undefined = netnsPath !== undefined ? { netnsPath } : pid !== undefined ? { pid } : undefined;
  return { target, discover };
}
