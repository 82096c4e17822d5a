// Test pods built the way a kubelet builds them: Debian's CNI plugins (/usr/lib/cni) run with CNI_COMMAND=ADD/DEL.
//
// Layout: a "node" netns plays the host. Each plugin binary runs inside it (`ip netns exec <node> env CNI_…=… plugin`)
// with CNI_NETNS pointing at the pod netns, so the host side (bridge cni0, veth peers, macvlan lower devices) lives in
// the node netns and nothing touches the real host. host-local IPAM keeps its leases in a per-pod temp dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { deleteNetns, makeNetns, type Netns } from './netns.js';

export const CNI_PATH = '/usr/lib/cni';

/** A CNI network configuration (the plugin's stdin). `type` names the plugin binary. */
export interface CniConf {
  readonly cniVersion: string;
  readonly name: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

/** The CNI 1.0 success result (the parts tests use). */
export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces?: readonly { readonly name: string; readonly mac?: string; readonly sandbox?: string }[];
  readonly ips?: readonly { readonly interface?: number; readonly address: string; readonly gateway?: string }[];
  readonly routes?: readonly { readonly dst: string; readonly gw?: string }[];
  readonly dns?: object;
}

function cniEnv(command: 'ADD' | 'DEL', pod: Netns, ifname: string, containerId: string): string[] {
  return [`CNI_COMMAND=${command}`, `CNI_CONTAINERID=${containerId}`, `CNI_NETNS=${pod.path}`, `CNI_IFNAME=${ifname}`, `CNI_PATH=${CNI_PATH}`];
}

async function invoke(command: 'ADD' | 'DEL', pod: Netns, conf: CniConf, ifname: string, containerId: string, node: Netns): Promise<string> {
  if (!/^[a-z0-9-]+$/.test(conf.type)) throw new Error(`cni: bad plugin type ${JSON.stringify(conf.type)}`);
  const argv = ['env', ...cniEnv(command, pod, ifname, containerId), `${CNI_PATH}/${conf.type}`];
  const r = await node.exec(argv, { input: JSON.stringify(conf), timeoutMs: 120_000 });
  if (r.code !== 0) {
    // Plugins report failures as a JSON error object on stdout.
    throw new Error(`cni ${command} ${conf.type} ${ifname} in ${pod.name} failed (exit ${r.code}): ${r.stdout.trim()} ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/**
 * CNI ADD of `conf` for interface `ifname` in the pod netns; the plugin runs in the node netns.
 * (The node netns is a fifth argument: bridge/macvlan plugins create their host side where they run.)
 */
export async function cniAdd(pod: Netns, conf: CniConf, ifname: string, containerId: string, node: Netns): Promise<CniResult> {
  const out = await invoke('ADD', pod, conf, ifname, containerId, node);
  return JSON.parse(out) as CniResult;
}

/** CNI DEL (idempotent per the spec). */
export async function cniDel(pod: Netns, conf: CniConf, ifname: string, containerId: string, node: Netns): Promise<void> {
  await invoke('DEL', pod, conf, ifname, containerId, node);
}

export interface CniSecondary {
  /** Pod interface name, e.g. "pod16477688c0e" (the hashed Multus name of network "blue"). */
  readonly ifname: string;
  readonly plugin: 'bridge' | 'macvlan';
  /** IPv4 subnet for host-local IPAM, e.g. "10.10.0.0/24". */
  readonly subnet: string;
  /** CNI network name (default: "sec<N>"). */
  readonly network?: string;
}

export interface CniPodOptions {
  /** Pod network IPv4 subnet (default 10.244.0.0/24): pod gets .2, the node bridge .1 (the default gateway). */
  readonly podCidr?: string;
  /** Optional IPv6 subnet for dual stack (default route ::/0 via the bridge's first address too). */
  readonly podCidr6?: string;
  /** MTU of the pod network (bridge plugin "mtu"); plugin default 1500. */
  readonly mtu?: number;
  readonly secondaries?: readonly CniSecondary[];
  /**
   * Attach to this node netns (its cni0) instead of a new one: several pods on one node, as a migration needs. The
   * node is then the caller's to delete; cleanup deletes only the pod.
   */
  readonly node?: Netns;
  /** host-local range bounds for eth0's IPv4 (e.g. the same address twice: a sticky pod IP as OVN-Kubernetes keeps). */
  readonly rangeStart?: string;
  readonly rangeEnd?: string;
}

export interface CniAttachment {
  readonly ifname: string;
  readonly conf: CniConf;
  readonly result: CniResult;
  /** The pod-side interface's MAC. */
  readonly mac: string;
  /** Its addresses ("10.244.0.2/24", …) and gateways, from the CNI result. */
  readonly addresses: readonly string[];
  readonly gateways: readonly string[];
}

export interface CniPod {
  readonly node: Netns;
  readonly pod: Netns;
  readonly containerId: string;
  /** eth0 first, then the secondaries in order. */
  readonly attachments: readonly CniAttachment[];
  /** CNI DEL of every attachment (best effort), then deletes both namespaces and the IPAM dir. Safe to call twice. */
  cleanup(): Promise<void>;
}

function attachment(ifname: string, conf: CniConf, result: CniResult): CniAttachment {
  const ifaces = result.interfaces ?? [];
  const podIfaceIndex = ifaces.findIndex((i) => i.name === ifname && i.sandbox !== undefined);
  const mine = (result.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === podIfaceIndex);
  return {
    ifname,
    conf,
    result,
    mac: ifaces[podIfaceIndex]?.mac ?? '',
    addresses: mine.map((ip) => ip.address),
    gateways: mine.flatMap((ip) => (ip.gateway !== undefined ? [ip.gateway] : [])),
  };
}

/**
 * A pod network namespace wired like a kubelet + Multus would: eth0 from the bridge plugin (bridge "cni0" in the node
 * netns, isGateway, host-local IPAM, default route via the bridge), plus secondaries (bridge without gateway, or macvlan
 * on a bridge in the node netns). Everything is torn down by cleanup(); on a failure here it is torn down before the
 * error is rethrown.
 */
export async function makeCniPod(options: CniPodOptions = {}): Promise<CniPod> {
  const containerId = `vna-${randomBytes(6).toString('hex')}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'vna-cni-'));
  let node: Netns | undefined;
  let pod: Netns | undefined;
  const added: { ifname: string; conf: CniConf }[] = [];
  let cleaned = false;

  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    const errors: string[] = [];
    if (node !== undefined && pod !== undefined) {
      for (const a of [...added].reverse()) {
        try {
          await cniDel(pod, a.conf, a.ifname, containerId, node);
        } catch (e) {
          errors.push(e instanceof Error ? e.message : String(e));
        }
      }
    }
    for (const ns of [pod, options.node === undefined ? node : undefined]) {
      if (ns === undefined) continue;
      try {
        await deleteNetns(ns.name);
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    await rm(dataDir, { recursive: true, force: true });
    // DEL failures alone are tolerable (the namespaces are gone anyway); a namespace that survived is not.
    const fatal = errors.filter((m) => m.startsWith('ip netns del'));
    if (fatal.length > 0) throw new Error(`makeCniPod cleanup: ${fatal.join('; ')}`);
  };

  try {
    node = options.node ?? (await makeNetns('cninode'));
    pod = await makeNetns('cnipod');
    const attachments: CniAttachment[] = [];

    const podCidr = options.podCidr ?? '10.244.0.0/24';
    const bounds = { ...(options.rangeStart !== undefined ? { rangeStart: options.rangeStart } : {}), ...(options.rangeEnd !== undefined ? { rangeEnd: options.rangeEnd } : {}) };
    const ranges: { subnet: string }[][] = [[{ subnet: podCidr, ...bounds }]];
    const routes: { dst: string }[] = [{ dst: '0.0.0.0/0' }];
    if (options.podCidr6 !== undefined) {
      ranges.push([{ subnet: options.podCidr6 }]);
      routes.push({ dst: '::/0' });
    }
    const primary: CniConf = {
      cniVersion: '1.0.0',
      name: 'podnet',
      type: 'bridge',
      bridge: 'cni0',
      isGateway: true,
      ipMasq: false,
      ...(options.mtu !== undefined ? { mtu: options.mtu } : {}),
      ipam: { type: 'host-local', dataDir, ranges, routes },
    };
    attachments.push(attachment('eth0', primary, await cniAdd(pod, primary, 'eth0', containerId, node)));
    added.push({ ifname: 'eth0', conf: primary });

    for (const [i, sec] of (options.secondaries ?? []).entries()) {
      const name = sec.network ?? `sec${i}`;
      const ipam = { type: 'host-local', dataDir, ranges: [[{ subnet: sec.subnet }]] };
      let conf: CniConf;
      if (sec.plugin === 'bridge') {
        conf = { cniVersion: '1.0.0', name, type: 'bridge', bridge: `br-sec${i}`, isGateway: false, ipMasq: false, ipam };
      } else {
        // The macvlan lower device is node infrastructure (a NIC on a real node): a bridge in the node netns.
        const lower = `mvl-sec${i}`;
        await node.execOk(['ip', 'link', 'add', lower, 'type', 'bridge']);
        await node.execOk(['ip', 'link', 'set', lower, 'up']);
        conf = { cniVersion: '1.0.0', name, type: 'macvlan', master: lower, mode: 'bridge', ipam };
      }
      attachments.push(attachment(sec.ifname, conf, await cniAdd(pod, conf, sec.ifname, containerId, node)));
      added.push({ ifname: sec.ifname, conf });
    }
    return { node, pod, containerId, attachments, cleanup };
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
}

/** One entry of the Multus `k8s.v1.cni.cncf.io/network-status` annotation. */
export interface NetworkStatusEntry {
  readonly name: string;
  readonly interface: string;
  readonly ips: readonly string[];
  readonly mac: string;
  readonly default?: boolean;
  readonly dns: object;
}

/**
 * The network-status Multus writes for this pod: the cluster default network (the primary CNI conf's name) first, then
 * each secondary as "<namespace>/<NetworkAttachmentDefinition name>" (the secondary's CNI conf name).
 */
export function networkStatusOf(cni: CniPod, namespace = 'default'): NetworkStatusEntry[] {
  return cni.attachments.map((a, i) => ({
    name: i === 0 ? a.conf.name : `${namespace}/${a.conf.name}`,
    interface: a.ifname,
    ips: a.addresses.map((cidr) => cidr.split('/')[0] ?? cidr),
    mac: a.mac,
    ...(i === 0 ? { default: true } : {}),
    dns: {},
  }));
}

/** Go's strconv.Quote for ASCII text (what the kubelet writes into a downward-API annotations file). */
function goQuote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
}

/** A downward-API `metadata.annotations` file: one `key="Go-quoted value"` line per annotation, sorted by key. */
export function downwardApiAnnotations(annotations: Readonly<Record<string, string>>): string {
  return Object.keys(annotations)
    .sort()
    .map((key) => `${key}=${goQuote(annotations[key] ?? '')}\n`)
    .join('');
}

export interface CniPeer {
  /** Another pod's netns attached to the same network (the far end of a secondary). */
  readonly ns: Netns;
  /** Its interface ("net1") and the address host-local gave it. */
  readonly ifname: string;
  readonly address: string;
  /** CNI DEL, then deletes the netns; safe to call twice. Call it before the pod's cleanup (macvlan needs its lower). */
  cleanup(): Promise<void>;
}

/**
 * Attaches a second pod ("peer") to the network of `cni.attachments[index]` with the same CNI conf (same bridge or
 * macvlan lower, same host-local range, so the next free address): what the other end of a Multus network looks like.
 */
export async function addCniPeer(cni: CniPod, index: number): Promise<CniPeer> {
  const target = cni.attachments[index];
  if (target === undefined) throw new Error(`addCniPeer: no attachment ${index}`);
  const ns = await makeNetns('cnipeer');
  const containerId = `vna-peer-${randomBytes(6).toString('hex')}`;
  const ifname = 'net1';
  let cleaned = false;
  let added = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    if (added) await cniDel(ns, target.conf, ifname, containerId, cni.node).catch(() => undefined);
    await deleteNetns(ns.name);
  };
  try {
    const result = attachment(ifname, target.conf, await cniAdd(ns, target.conf, ifname, containerId, cni.node));
    added = true;
    const address = result.addresses[0];
    if (address === undefined) throw new Error(`addCniPeer: CNI gave ${ifname} no address`);
    return { ns, ifname, address, cleanup };
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
}
