// The real KernelDriver: rtnetlink in-process (npm netlink), taps by tun ioctls, sysctls by /proc/sys, nftables through libnftables in-process (the nft binary as fallback).
//
// Namespace: by default everything acts on the namespace the main thread is in when the driver is created (the CLI
// calls enterNetns first). With `netns`, the driver stays usable from a process that remains in its own namespace
// (tests, tools): the netlink socket is opened inside a NetnsScope (and stays bound to the target), and every other
// namespace-sensitive step — opening /dev/net/tun, /proc/sys files, spawning nft, the dummy probe — runs synchronously
// inside scope.run. See agent/apply/netns.ts.
import { parseCidr, cidrAddress, ipFamily } from '../plan/ip.js';
import { noteNetlinkSocketClosed, noteNetlinkSocketOpened, openNetnsScope, type NetnsScope, type NetnsTarget } from '../apply/netns.js';
import { nodeCrypto } from '../plan/lazy-builtins.js';
import type { AddressInfo, KernelDriver, LinkChanges, LinkInfo, RouteInfo, TapOptions } from './kernel.js';
import { hasErrno, KernelError } from './kernel-error.js';
import { createLibNft } from './libnftables.js';
import { createNft } from './nft.js';
import { backgroundNetlink, type NetlinkWorker } from './netlink-worker.js';
import { NUD_PERMANENT, NUD_REACHABLE, NUD_VALID } from './rtnl-codec.js';
import { Rtnl, type RtLink, type RtRoute } from './rtnl.js';
import { readSysctl, writeSysctl } from './sysctl.js';
import { createTapDevice } from './tap.js';

export interface NetlinkDriverOptions {
  /** Act on this namespace without moving the process into it (see the file comment). Default: the current one. */
  readonly netns?: NetnsTarget;
}

/** The link group ("VNA") a teardown tags its links with to delete them in one request; no CNI or kernel default uses it. */
export const TEARDOWN_LINK_GROUP = 0x564e41;

/** How often a background deletion checks whether its links are unlisted yet (they are after a few ms). */
const UNLISTED_POLL_MS = 1;

const SCOPE_NAMES: Readonly<Record<number, AddressInfo['scope']>> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };

function macText(bytes: Buffer | null): string {
  if (bytes === null) return '';
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function macBytes(mac: string, op: string): Buffer {
  const lower = mac.trim().toLowerCase();
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(lower)) throw new KernelError(op, 'EINVAL', `not a MAC address: ${JSON.stringify(mac)}`);
  return Buffer.from(lower.split(':').map((h) => parseInt(h, 16)));
}

function cidrParts(cidr: string, op: string): { family: 4 | 6; ip: string; prefixLength: number } {
  const parsed = parseCidr(cidr);
  if (parsed === null) throw new KernelError(op, 'EINVAL', `not an address with prefix length: ${JSON.stringify(cidr)}`);
  return { family: parsed.family, ip: cidrAddress(parsed), prefixLength: parsed.prefixLength };
}

function toLinkInfo(l: RtLink): LinkInfo {
  return {
    index: l.index,
    name: l.name,
    kind: l.kind ?? 'device',
    mac: macText(l.address),
    mtu: l.mtu,
    up: l.up,
    masterIndex: l.master,
    learning: l.learning,
    tun: l.tun === null ? null : { owner: l.tun.owner, group: l.tun.group, multiQueue: l.tun.multiQueue, persist: l.tun.persist },
  };
}

function toRouteInfo(r: RtRoute): RouteInfo {
  return {
    family: r.family,
    dst: r.dstLength === 0 ? 'default' : `${r.dst ?? (r.family === 4 ? '0.0.0.0' : '::')}/${r.dstLength}`,
    index: r.oif,
    gw: r.gateway,
    table: r.table,
    protocol: r.protocol,
    scope: r.scope,
    metric: r.priority,
    type: r.type,
  };
}

/** "default" / CIDR → destination parts (host bits kept as given; the kernel rejects them for IPv4 routes). */
function routeDst(dst: string, family: 4 | 6, op: string): { dst: string | null; dstLength: number } {
  if (dst === 'default') return { dst: null, dstLength: 0 };
  const parts = cidrParts(dst, op);
  if (parts.family !== family) throw new KernelError(op, 'EINVAL', `${dst} is not an IPv${family} destination`);
  return { dst: parts.ip, dstLength: parts.prefixLength };
}

export function createNetlinkDriver(options: NetlinkDriverOptions = {}): KernelDriver {
  const scope: NetnsScope | null = options.netns !== undefined ? openNetnsScope(options.netns) : null;
  const inNs = <T>(fn: () => T): T => (scope !== null ? scope.run(fn) : fn());
  let rtnl: Rtnl;
  try {
    rtnl = inNs(() => Rtnl.open());
  } catch (err) {
    scope?.close();
    throw err;
  }
  noteNetlinkSocketOpened();
  // In-process libnftables (no process per nft command); the nft binary where the library cannot be loaded.
  const nft = createLibNft(inNs) ?? createNft({ spawnIn: inNs });
  const kindSupport = new Map<string, Promise<boolean>>();
  let closed = false;
  const label = (index: number): string => `ifindex ${index}`;

  async function indexOf(name: string, op: string): Promise<number> {
    const index = rtnl.indexByName(name);
    if (index === null) throw new KernelError(op, 'ENODEV', `no link named ${name}`);
    return index;
  }

  /** Creates and deletes a throwaway link of the kind; EOPNOTSUPP ("Unknown device type") means unsupported. */
  async function probeKind(kind: string): Promise<boolean> {
    const name = `vnaprobe${nodeCrypto().randomBytes(3).toString('hex')}`;
    try {
      await rtnl.createLink(name, kind);
    } catch (err) {
      if (hasErrno(err, 'EOPNOTSUPP')) return false;
      throw err;
    }
    await rtnl.deleteLink(await indexOf(name, `netlink: delete probe ${name}`), name);
    return true;
  }

  /**
   * The group deletion on the worker's thread, over a socket of its own in this namespace: resolves as soon as the
   * kernel has unlisted every link (a few ms; from then on nothing of them is visible in the namespace and the names
   * are free) or with the kernel's refusal; the rest of the call, the grace periods before the kernel frees the
   * devices, goes on in the thread and the worker keeps it until it ends (a failure then is the worker's to report).
   */
  async function deleteGroupInBackground(worker: NetlinkWorker, indices: readonly number[], what: string): Promise<void> {
    const deleter = inNs(() => Rtnl.open());
    noteNetlinkSocketOpened();
    const completion = deleter.deleteGroupInWorker(TEARDOWN_LINK_GROUP, what, worker).finally(() => {
      deleter.close();
      noteNetlinkSocketClosed();
    });
    worker.track(completion);
    let finished = false;
    const unlisted = (async () => {
      while (!finished && indices.some((index) => rtnl.linkListed(index))) await new Promise((resolve) => setTimeout(resolve, UNLISTED_POLL_MS));
    })();
    try {
      await Promise.race([completion, unlisted]);
    } finally {
      finished = true;
    }
  }

  const driver: KernelDriver = {
    async listLinks() {
      return (await rtnl.links()).map(toLinkInfo);
    },
    async linkIndex(name) {
      return rtnl.indexByName(name);
    },
    async listAddresses() {
      return (await rtnl.addresses()).map((a) => ({
        index: a.index,
        cidr: `${a.ip}/${a.prefixLength}`,
        family: a.family,
        scope: SCOPE_NAMES[a.scope] ?? 'global',
      }));
    },
    async listRoutes() {
      return (await rtnl.routes()).map(toRouteInfo);
    },
    async listNeighbours() {
      return (await rtnl.neighbours()).map((n) => ({
        index: n.index,
        family: n.family,
        ip: n.ip,
        mac: macText(n.lladdr),
        permanent: (n.state & NUD_PERMANENT) !== 0,
        valid: (n.state & NUD_VALID) !== 0 && n.lladdr !== null,
        reachable: (n.state & NUD_REACHABLE) !== 0 && n.lladdr !== null,
      }));
    },
    supportsLinkKind(kind) {
      let cached = kindSupport.get(kind);
      if (cached === undefined) {
        cached = probeKind(kind);
        // A failed probe (e.g. EPERM) is not cached: the next call tries again.
        cached.catch(() => kindSupport.delete(kind));
        kindSupport.set(kind, cached);
      }
      return cached;
    },

    async createBridge(name, mac) {
      await rtnl.createLink(name, 'bridge', mac !== undefined ? macBytes(mac, `netlink: create bridge ${name}`) : undefined);
    },
    async createDummy(name) {
      await rtnl.createLink(name, 'dummy');
    },
    async createTap(name, options: TapOptions) {
      inNs(() => createTapDevice(name, { queues: options.queues, uid: options.owner.uid, gid: options.owner.gid }));
      if (options.mtu !== undefined) {
        const index = await indexOf(name, `netlink: set tap ${name} mtu`);
        await rtnl.change(index, { mtu: options.mtu }, name);
      }
    },
    async setLink(index, changes: LinkChanges) {
      // Down first and up last, so renames and MAC changes happen while the link is down when the caller asks for it.
      if (changes.up === false) await rtnl.setUp(index, false, label(index));
      await rtnl.change(
        index,
        {
          ...(changes.name !== undefined ? { name: changes.name } : {}),
          ...(changes.mac !== undefined ? { address: macBytes(changes.mac, `netlink: set ${label(index)} address`) } : {}),
          ...(changes.mtu !== undefined ? { mtu: changes.mtu } : {}),
          ...(changes.master !== undefined ? { master: changes.master ?? 0 } : {}),
        },
        label(index),
      );
      if (changes.up === true) await rtnl.setUp(index, true, label(index));
    },
    async setBridgePortLearning(index, learning) {
      await rtnl.setBridgePortLearning(index, learning, label(index));
    },
    async deleteLink(index) {
      await rtnl.deleteLink(index, label(index));
    },
    async deleteLinks(indices) {
      if (indices.length === 0) return;
      const worker = backgroundNetlink();
      if (worker === null && indices.length === 1 && indices[0] !== undefined) return rtnl.deleteLink(indices[0], label(indices[0]));
      // Tag them with our group, then delete the group: links left tagged by a crash in between are ours too, and the
      // next teardown deletes them the same way.
      for (const index of indices) await rtnl.setGroup(index, TEARDOWN_LINK_GROUP, label(index));
      const what = indices.map(label).join(', ');
      if (worker === null) return rtnl.deleteGroup(TEARDOWN_LINK_GROUP, what);
      await deleteGroupInBackground(worker, indices, what);
    },
    async addAddress(index, cidr) {
      const p = cidrParts(cidr, `netlink: add address to ${label(index)}`);
      await rtnl.addAddress(index, p.family, p.ip, p.prefixLength, label(index));
    },
    async deleteAddress(index, cidr) {
      const p = cidrParts(cidr, `netlink: delete address from ${label(index)}`);
      await rtnl.deleteAddress(index, p.family, p.ip, p.prefixLength, label(index));
    },
    async addRoute(route) {
      const what = `${route.dst}${route.gw !== undefined ? ` via ${route.gw}` : ''} dev ${label(route.index)}`;
      const d = routeDst(route.dst, route.family, `netlink: add route ${what}`);
      await rtnl.addRoute({ family: route.family, ...d, oif: route.index, gateway: route.gw ?? null }, what);
    },
    async setNeighbour(index, ip, mac) {
      const what = `netlink: set neighbour ${ip} on ${label(index)}`;
      const family = ipFamily(ip);
      if (family === null) throw new KernelError(what, 'EINVAL', `not an IP address: ${JSON.stringify(ip)}`);
      await rtnl.setReachableNeighbour(index, family, ip, macBytes(mac, what), label(index));
    },
    async deleteRoute(route: RouteInfo) {
      const what = `${route.dst}${route.gw !== null ? ` via ${route.gw}` : ''}${route.index !== null ? ` dev ${label(route.index)}` : ''} table ${route.table}`;
      const d = routeDst(route.dst, route.family, `netlink: delete route ${what}`);
      await rtnl.deleteRoute(
        {
          family: route.family,
          dstLength: d.dstLength,
          dst: d.dst,
          gateway: route.gw,
          oif: route.index,
          table: route.table,
          protocol: route.protocol,
          scope: route.scope,
          type: route.type,
          priority: route.metric,
        },
        what,
      );
    },

    readSysctl(name) {
      return inNs(() => readSysctl(name));
    },
    writeSysctl(name, value) {
      inNs(() => writeSysctl(name, value));
    },

    nftApply(rulesetText) {
      return nft.apply(rulesetText);
    },
    nftList() {
      return nft.list();
    },

    close() {
      if (closed) return;
      closed = true;
      rtnl.close();
      noteNetlinkSocketClosed();
      scope?.close();
    },
  };
  return driver;
}
