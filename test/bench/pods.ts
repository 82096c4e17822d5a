// Cheap benchmark pods: a "node" netns and a "pod" netns joined by veths, built with two `ip -batch` runs (no CNI plugins).
//
// eth0 gets 10.244.<n>.5/24 with a default route via the node end (10.244.<n>.1), like the CNI bridge plugin leaves it.
// Secondaries (Multus-style, bridge binding) get KubeVirt's hashed pod interface names and 10.<100+i>.<n>.5/24.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashedPodInterfaceName } from '../../agent/plan/names.js';
import { deleteNetns, makeNetns, runOk, type Netns } from '../helpers/netns.js';

export interface BenchPod {
  readonly node: Netns;
  readonly pod: Netns;
  readonly podIp: string;
  readonly nodeIp: string;
  readonly podMac: string;
  /** Secondary network names (net1, net2, …) in order. */
  readonly secondaries: readonly string[];
  /** The Multus network-status annotation JSON for the pod. */
  readonly networkStatus: string;
  cleanup(): Promise<void>;
}

let counter = 0;

/** A pod with eth0 (index `n` picks the subnet) and `secondaries` bridge-binding secondaries. */
export async function makeBenchPod(workDir: string, secondaries = 0): Promise<BenchPod> {
  const n = (counter++ % 200) + 20;
  const node = await makeNetns('bnode');
  let pod: Netns | undefined;
  try {
    pod = await makeNetns('bpod');
    const nodeLines = [`link add vpod type veth peer name eth0 netns ${pod.name}`, 'addr add 10.244.' + n + '.1/24 dev vpod', 'link set vpod up'];
    const podLines = ['addr add 10.244.' + n + '.5/24 dev eth0', 'link set eth0 up', `route add default via 10.244.${n}.1`];
    const names: string[] = [];
    const status: object[] = [{ name: 'kindnet', interface: 'eth0', ips: [`10.244.${n}.5`], default: true, dns: {} }];
    for (let i = 1; i <= secondaries; i++) {
      const net = `net${i}`;
      const ifname = hashedPodInterfaceName(net);
      names.push(net);
      nodeLines.push(`link add vs${i} type veth peer name ${ifname} netns ${pod.name}`, `link set vs${i} up`);
      podLines.push(`addr add 10.${100 + i}.${n}.5/24 dev ${ifname}`, `link set ${ifname} up`);
      status.push({ name: `default/${net}`, interface: ifname, ips: [`10.${100 + i}.${n}.5`], dns: {} });
    }
    const nodeFile = join(workDir, `${node.name}.batch`);
    const podFile = join(workDir, `${pod.name}.batch`);
    writeFileSync(nodeFile, `${nodeLines.join('\n')}\n`);
    writeFileSync(podFile, `${podLines.join('\n')}\n`);
    await runOk(['ip', '-n', node.name, '-batch', nodeFile]);
    await runOk(['ip', '-n', pod.name, '-batch', podFile]);
    const links = JSON.parse((await runOk(['ip', '-n', pod.name, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[];
    const thePod = pod;
    return {
      node,
      pod,
      podIp: `10.244.${n}.5`,
      nodeIp: `10.244.${n}.1`,
      podMac: links[0]?.address ?? '',
      secondaries: names,
      networkStatus: JSON.stringify(status),
      async cleanup() {
        await deleteNetns(thePod.name);
        await deleteNetns(node.name);
      },
    };
  } catch (err) {
    if (pod) await deleteNetns(pod.name);
    await deleteNetns(node.name);
    throw err;
  }
}

/** A VMI: masquerade on the pod network (with `ports`), plus `secondaries` Multus networks with bridge binding. */
export function benchVmi(uid: string, options: { masquerade: boolean; ports?: readonly number[]; secondaries?: readonly string[] }): object {
  const interfaces: object[] = [];
  const networks: object[] = [];
  if (options.masquerade) {
    interfaces.push({ name: 'default', masquerade: {}, ...(options.ports ? { ports: options.ports.map((port) => ({ port })) } : {}) });
    networks.push({ name: 'default', pod: {} });
  } else {
    interfaces.push({ name: 'default', bridge: {} });
    networks.push({ name: 'default', pod: {} });
  }
  for (const net of options.secondaries ?? []) {
    interfaces.push({ name: net, bridge: {} });
    networks.push({ name: net, multus: { networkName: net } });
  }
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'benchvmi', namespace: 'default', uid },
    spec: { domain: { devices: { interfaces } }, networks },
    status: { migrationTransport: 'Unix' },
  };
}
