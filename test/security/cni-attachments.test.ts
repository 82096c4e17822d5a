// The CNI plugin's attachment folders: two attachments whose old keys collided (network a_b + container c, network a + container b_c) stay apart; a folder left by an older version is still found by DEL; one the launcher user owns (older binding-plugin folders were handed to it) is removed unread, its forged record never acted on.
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpNetns } from '../helpers/agent-run.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { asLauncher, LAUNCHER_UID } from '../helpers/attacker.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { plugin } from '../helpers/cni-plugin.js';
import { netnsAvailable } from '../helpers/netns.js';

describe.skipIf(!netnsAvailable())('security: CNI attachment folders', { timeout: 300_000 }, () => {
  let dir = '';
  let stateRoot = '';
  let config = '';
  let one: CniPod;
  let two: CniPod;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-sec-attach-'));
    chmodSync(dir, 0o755);
    stateRoot = join(dir, 'state');
    mkdirSync(stateRoot, { mode: 0o755 });
    config = writeAgentConfig(dir, { stateRoot });
    one = await makeCniPod({ podCidr: '10.244.63.0/24' });
    two = await makeCniPod({ podCidr: '10.244.64.0/24' });
  }, 180_000);

  afterAll(async () => {
    await one?.cleanup();
    await two?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  const env = (pod: CniPod, command: string, containerId: string): Record<string, string> => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: pod.pod.path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    VIRT_NET_AGENT_CONFIG: config,
  });
  const conf = (pod: CniPod, network: string): string =>
    JSON.stringify({ cniVersion: '1.0.0', name: network, type: 'virt-net-agent', binding: 'masquerade', prevResult: pod.attachments[0]?.result });

  it('network a_b + container c and network a + container b_c each get their own folder; DEL of one leaves the other plumbed', async () => {
    const beforeOne = await dumpNetns(one.pod);
    const beforeTwo = await dumpNetns(two.pod);
    const addOne = await plugin(one.node, env(one, 'ADD', 'c'), conf(one, 'vna_x'));
    expect(addOne.code, addOne.stdout).toBe(0);
    const plumbedOne = await dumpNetns(one.pod, { ignoreMacOf: ['tap0'] });
    const addTwo = await plugin(two.node, env(two, 'ADD', 'x_c'), conf(two, 'vna'));
    expect(addTwo.code, addTwo.stdout).toBe(0);
    const plumbedTwo = await dumpNetns(two.pod, { ignoreMacOf: ['tap0'] });
    expect(readdirSync(stateRoot)).toHaveLength(2);

    const delOne = await plugin(one.node, env(one, 'DEL', 'c'), conf(one, 'vna_x'));
    expect(delOne.code, delOne.stdout).toBe(0);
    expect(await dumpNetns(one.pod)).toEqual(beforeOne);
    expect(await dumpNetns(two.pod, { ignoreMacOf: ['tap0'] })).toEqual(plumbedTwo);
    expect(plumbedTwo).not.toEqual(beforeTwo);
    expect(plumbedOne).not.toEqual(beforeOne);

    const delTwo = await plugin(two.node, env(two, 'DEL', 'x_c'), conf(two, 'vna'));
    expect(delTwo.code, delTwo.stdout).toBe(0);
    expect(await dumpNetns(two.pod)).toEqual(beforeTwo);
    expect(readdirSync(stateRoot)).toEqual([]);
  });

  it('a folder written under the old key (before the unambiguous keys) is still found and undone by DEL', async () => {
    const before = await dumpNetns(one.pod);
    const add = await plugin(one.node, env(one, 'ADD', 'legacy-1'), conf(one, 'vna'));
    expect(add.code, add.stdout).toBe(0);
    // What the old version left: the same folder under `<network>_<container>_<ifname>`, its VMI keyed on that.
    const [key = ''] = readdirSync(stateRoot);
    const legacy = 'vna_legacy-1_eth0';
    renameSync(join(stateRoot, key), join(stateRoot, legacy));
    const record = JSON.parse(readFileSync(join(stateRoot, legacy, 'attachment.json'), 'utf8')) as { vmi: { metadata: { uid: string } } };
    record.vmi.metadata.uid = legacy;
    writeFileSync(join(stateRoot, legacy, 'attachment.json'), JSON.stringify(record));
    const del = await plugin(one.node, env(one, 'DEL', 'legacy-1'), conf(one, 'vna'));
    expect(del.code, del.stdout).toBe(0);
    expect(await dumpNetns(one.pod)).toEqual(before);
    expect(readdirSync(stateRoot)).toEqual([]);
  });

  it('a folder the launcher user owns, with a forged record naming the pod NIC as ours: DEL removes it unread and deletes nothing', async () => {
    const before = await dumpNetns(two.pod);
    // An older version handed binding-plugin folders to the launcher user; it then rewrote them.
    const legacy = join(stateRoot, 'vna_forged-1_eth0');
    mkdirSync(legacy, { mode: 0o700 });
    chownSync(legacy, LAUNCHER_UID, LAUNCHER_UID);
    const eth0 = (JSON.parse((await two.pod.execOk(['ip', '-j', 'link', 'show', 'eth0'])).stdout) as { ifindex: number }[])[0]?.ifindex ?? 0;
    const vmi = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'x', uid: 'vna_forged-1_eth0' }, spec: {} };
    const state = {
      version: 1,
      vmi: { name: 'x', namespace: 'default', uid: 'vna_forged-1_eth0' },
      networks: { default: { binding: 'masquerade', podInterface: 'eth0', podInterfaceIndex: eth0 + 1000, podIdentity: null, renamedTo: null, created: ['eth0'] } },
      sysctlsBefore: { 'net.ipv4.ip_forward': '1' },
      nft: null,
    };
    const forged = { version: 1, network: 'vna', containerId: 'forged-1', ifname: 'eth0', netns: two.pod.path, role: 'binding-plugin', binding: 'masquerade', vmi, kubevirtConfig: {}, spoofProtection: false, result: {} };
    writeFileSync(join(dir, 'forged-state.json'), JSON.stringify(state), { mode: 0o644 });
    writeFileSync(join(dir, 'forged-record.json'), JSON.stringify(forged), { mode: 0o644 });
    const plant = await asLauncher('cp "$W/forged-state.json" "$D/state.json" && cp "$W/forged-record.json" "$D/attachment.json"', { W: dir, D: legacy });
    expect(plant.code, plant.stderr).toBe(0);

    const del = await plugin(two.node, env(two, 'DEL', 'forged-1'), conf(two, 'vna'));
    expect(await dumpNetns(two.pod)).toEqual(before); // eth0 is still there
    expect(del.code, del.stdout).toBe(0);
    expect(existsSync(legacy)).toBe(false);
  });
});
