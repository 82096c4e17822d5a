// How the plugin reaches an attachment's pod: a netlink driver bound to CNI_NETNS (the thread never moves) and discovery options.
import { existsSync } from 'node:fs';
import type { DiscoverOptions } from '../apply/discover.js';
import { createNetlinkDriver } from '../drivers/netlink-driver.js';
import type { KernelDriver } from '../drivers/kernel.js';
import { InputError } from '../plan/errors.js';
import type { Arch } from '../plan/plan-types.js';
import { CNI_CODES, CniSpecError } from './errors.js';

/**
 * A driver acting on the namespace file `netns` from this thread's own namespace (NetnsScope inside the driver), so
 * a resident cni-daemon keeps its namespace between invocations. A bad path is error 4 naming CNI_NETNS.
 */
export function openPodDriver(netns: string): KernelDriver {
  try {
    return createNetlinkDriver({ netns: { netnsPath: netns, refuseOwn: true } });
  } catch (error) {
    if (error instanceof InputError) throw new CniSpecError(CNI_CODES.invalidEnvironment, 'CNI_NETNS', error.message);
    throw error;
  }
}

/** true when the namespace file is gone (DEL/GC after the runtime removed the pod: nothing left to undo in it). */
export function netnsGone(netns: string): boolean {
  return netns === '' || !existsSync(netns);
}

/**
 * Discovery for an attachment: resolv.conf is the primary plugin's DNS (given as text, no file), and no Multus/KubeVirt
 * downward-API files (the node's /etc/podinfo is not the pod's).
 */
export function attachmentDiscover(resolvConf: string, hostname: string): DiscoverOptions {
  return { resolvConf, hostname, readPodinfo: false };
}

const NODE_ARCH: Readonly<Record<string, Arch>> = { x64: 'amd64', arm64: 'arm64', s390x: 's390x' };

export function pluginArch(): Arch {
  return NODE_ARCH[process.arch] ?? 'amd64';
}
