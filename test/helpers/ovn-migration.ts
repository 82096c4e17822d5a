// Test helper: live migration across OVN chassis, KubeVirt + OVN-Kubernetes style, on top of test/helpers/ovn.ts and
// test/helpers/migration.ts (PodSide, migrate, the probe).
//
// The VM's logical switch port outlives its pods: its MAC and IP stay (OVN-K's persistent IPs for VMs). The source pod
// on one chassis is bound to it; for the migration the LSP's requested-chassis names both chassis and
// activation-strategy=rarp keeps the target chassis' copy blocked until a RARP arrives there (QEMU's announce-self
// after the switchover); then requested-chassis names the target alone and the source pod goes.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CniPod } from './cni.js';
import { PodSide } from './migration.js';
import { waitFor, type Netns } from './netns.js';
import { POD_SUBNET, type Chassis, type OvnNetwork, type OvnPod } from './ovn.js';

const RARP_WATCH = resolve('test/helpers/rarp_watch.py');

/** The PodSide view of an OVN pod (what makeCniPod would return for it): eth0 with the LSP's MAC and address. */
export function asCniPod(ovn: OvnNetwork, pod: OvnPod): CniPod {
  return {
    node: pod.chassis.ns,
    pod: pod.ns,
    containerId: pod.lsp,
    attachments: [{
      ifname: pod.ifname,
      conf: { cniVersion: '1.0.0', name: 'ovn-kubernetes', type: 'ovn-k8s-cni-overlay' },
      result: { cniVersion: '1.0.0', interfaces: [{ name: pod.ifname, mac: pod.mac, sandbox: pod.ns.path }], ips: [{ interface: 0, address: pod.cidr, gateway: POD_SUBNET.gateway }] },
      mac: pod.mac,
      addresses: [pod.cidr],
      gateways: [POD_SUBNET.gateway],
    }],
    cleanup: () => ovn.removePod(pod),
  };
}

/** A launcher pod on `chassis` bound to the VM's LSP (created with it unless `target`: the LSP exists then). */
export async function ovnPodSide(ovn: OvnNetwork, label: string, workDir: string, chassis: Chassis, vm: { lsp: string; ip: string; mac: string }, target: boolean): Promise<{ side: PodSide; pod: OvnPod }> {
  const side = new PodSide(label, workDir);
  const pod = await ovn.addPod({ chassis, lsp: vm.lsp, ip: vm.ip, mac: vm.mac, noLsp: target, noWait: target });
  side.cni = asCniPod(ovn, pod);
  return { side, pod };
}

/** Migration starts: the port may live on both chassis, the target's copy blocked until a RARP arrives there. */
export async function allowBoth(ovn: OvnNetwork, lsp: string, from: Chassis, to: Chassis): Promise<void> {
  await ovn.nbctl(['--wait=hv', 'set', 'logical_switch_port', lsp, `options:requested-chassis=${from.name},${to.name}`, 'options:activation-strategy=rarp']);
}

/** The target pod's port is bound as the additional chassis and its flows are installed (blocked until activation). */
export async function waitTargetBound(ovn: OvnNetwork, pod: OvnPod): Promise<void> {
  await waitFor(async () => (await ovn.binding(pod.lsp)).additional.includes(pod.chassis.name), { timeoutMs: 30_000, intervalMs: 50, what: `${pod.lsp} bound on ${pod.chassis.name} as additional chassis` });
  await ovn.waitInstalled(pod);
}

/** Migration done: the port on the target chassis alone, no activation strategy any more. */
export async function targetOnly(ovn: OvnNetwork, lsp: string, to: Chassis): Promise<void> {
  await ovn.nbctl(['--wait=hv', 'set', 'logical_switch_port', lsp, `options:requested-chassis=${to.name}`, '--', 'remove', 'logical_switch_port', lsp, 'options', 'activation-strategy']);
}

/** Unix times of RARP frames (ethertype 0x8035) seen on an interface of a netns (test/helpers/rarp_watch.py). */
export interface RarpWatch {
  /** When each RARP arrived (unix seconds). */
  times(): number[];
  /** When each ICMP echo reply was received on the interface (the guest answering a probe, seen in the pod). */
  echoReplyTimes(): number[];
  stop(): Promise<void>;
}

export async function watchRarp(ns: Netns, ifname: string, logFile: string): Promise<RarpWatch> {
  const child = spawn('ip', ['netns', 'exec', ns.name, 'python3', RARP_WATCH, ifname, logFile], { stdio: 'ignore' });
  await waitFor(async () => child.exitCode !== null || (existsSync(logFile) && readFileSync(logFile, 'utf8').startsWith('# start')), { timeoutMs: 30_000, intervalMs: 50, what: `the RARP watcher on ${ifname}` });
  if (child.exitCode !== null) throw new Error(`rarp_watch.py on ${ifname} exited ${child.exitCode}`);
  return {
    times: () => loggedTimes(logFile, 'rarp'),
    echoReplyTimes: () => loggedTimes(logFile, 'echo-reply'),
    stop: () =>
      new Promise((resolveStop) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolveStop();
        child.once('exit', () => resolveStop());
        child.kill('SIGTERM');
      }),
  };
}

/** The times of the watcher's lines of one kind ("t kind detail"). */
function loggedTimes(logFile: string, kind: string): number[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#') && l.split(' ')[1] === kind)
    .map((l) => Number(l.split(' ')[0]));
}

/** The first probe reply (unix seconds) at or after `t` from the probe log, or null. */
export function firstReplyAfter(probeLog: string, t: number): number | null {
  for (const line of readFileSync(probeLog, 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = Number(line.split(' ')[0]);
    if (at >= t) return at;
  }
  return null;
}
