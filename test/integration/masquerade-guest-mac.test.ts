// Masquerade and a guest that changes its own MAC (bonding with fail_over_mac, a MAC set in the guest OS): setup's
// neighbour entry for 10.0.2.2 is one the kernel re-learns, so inbound traffic to the pod IP finds the guest again once
// it announces itself (a gratuitous ARP, as bonding and arp_notify send). With round 2's permanent entry it never did;
// a setup re-run replaces such a pin. On a CNI-built pod with a fake guest (a netns on the bridge).
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { agent, setupSummary } from '../helpers/agent-run.js';
import { attachGuest } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAvailable, waitFor, type Netns } from '../helpers/netns.js';
import { probe, probeUntil, startServer } from '../helpers/tcp.js';

const VMI = `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: macvmi
  namespace: default
  uid: guest-mac-${process.pid}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
        ports:
        - port: 80
  networks:
  - name: default
    pod: {}
status:
  migrationTransport: Unix
`;

describe.skipIf(!netnsAvailable())('masquerade: a guest that changes its MAC keeps receiving inbound traffic', { timeout: 300_000 }, () => {
  let cni: CniPod;
  let guest: Netns;
  let dir: string;
  let args: string[];
  let podIp: string;
  let entryAfterSetup = '';
  const servers: ChildProcessWithoutNullStreams[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-guest-mac-'));
    cni = await makeCniPod({ podCidr: '10.244.47.0/24' });
    podIp = cni.attachments[0]!.addresses[0]!.split('/')[0]!;
    writeFileSync(join(dir, 'vmi.yaml'), VMI);
    args = ['--vmi', join(dir, 'vmi.yaml'), '--netns', cni.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null'];
    setupSummary(await agent(['setup', ...args]));
    // The kernel applies carrier changes up to a second late (linkwatch) and flushes the bridge's neighbour entries
    // when its carrier goes (the tap joined without one): the entry must still be there after that has run.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    entryAfterSetup = (await cni.pod.execOk(['ip', 'neigh', 'show', '10.0.2.2', 'dev', 'k6t-eth0'])).stdout.trim();
    guest = await attachGuest(cni.pod, 'k6t-eth0', 'vguest', cni.attachments[0]?.mac);
    await guest.execOk(['ip', 'addr', 'add', '10.0.2.2/24', 'dev', 'eth0']);
    await guest.execOk(['ip', 'route', 'add', 'default', 'via', '10.0.2.1']);
    // A guest OS that announces a new MAC with a gratuitous ARP (bonding's failover does; so does arp_notify).
    await guest.execOk(['sysctl', '-qw', 'net.ipv4.conf.eth0.arp_notify=1']);
    servers.push(await startServer(guest, 'guest', [80]));
  }, 180_000);

  afterAll(async () => {
    for (const server of servers) server.kill('SIGKILL');
    if (guest) await deleteNetns(guest.name);
    await cni?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  const neighbour = async (): Promise<string> => (await cni.pod.execOk(['ip', 'neigh', 'show', '10.0.2.2', 'dev', 'k6t-eth0'])).stdout.trim();
  // The node reaches the pod IP from its bridge address (the pod's gateway).
  const expected = (): string => 'guest:80 from 10.244.47.1';

  it('inbound reaches the guest before and after it changes its MAC; the pod re-learns the new MAC', async () => {
    expect(entryAfterSetup).toMatch(new RegExp(`lladdr ${cni.attachments[0]!.mac} REACHABLE`));
    expect(await neighbour()).toMatch(new RegExp(`lladdr ${cni.attachments[0]!.mac} (REACHABLE|STALE|DELAY)`));
    expect(await probeUntil(cni.node, podIp, 80, expected())).toBe(expected());
    await guest.execOk(['ip', 'link', 'set', 'eth0', 'address', '52:54:00:4d:41:01']);
    await waitFor(async () => (await neighbour()).includes('lladdr 52:54:00:4d:41:01'), { timeoutMs: 60_000, intervalMs: 100, what: 'the pod to learn the guest\'s new MAC' });
    expect(await probe(cni.node, podIp, 80)).toBe(expected());
  });

  it('a permanent pin (round 2) cuts the guest off after a MAC change; a setup re-run replaces it and the guest is found again', async () => {
    const pinned = (await guest.execOk(['cat', '/sys/class/net/eth0/address'])).stdout.trim();
    await cni.pod.execOk(['ip', 'neigh', 'replace', '10.0.2.2', 'lladdr', pinned, 'dev', 'k6t-eth0', 'nud', 'permanent']);
    await guest.execOk(['ip', 'link', 'set', 'eth0', 'address', '52:54:00:4d:41:02']);
    expect(await probe(cni.node, podIp, 80, { timeoutMs: 3000 })).toBe('TIMEOUT');
    expect(await neighbour()).toContain(`lladdr ${pinned} PERMANENT`);
    // The re-run sees the permanent entry (which the kernel never re-learns) and sets a re-learnable one instead.
    const rerun = setupSummary(await agent(['setup', ...args]));
    expect(rerun.actions).toEqual([`set neighbour 10.0.2.2 lladdr ${cni.attachments[0]!.mac} dev k6t-eth0 nud reachable`]);
    // The guest announces itself again (as bonding does on each failover): the pod follows.
    await guest.execOk(['ip', 'link', 'set', 'eth0', 'address', '52:54:00:4d:41:03']);
    await waitFor(async () => (await neighbour()).includes('lladdr 52:54:00:4d:41:03'), { timeoutMs: 60_000, intervalMs: 100, what: 'the pod to learn the guest\'s new MAC' });
    expect(await probeUntil(cni.node, podIp, 80, expected())).toBe(expected());
    // And a further re-run leaves the kernel's learned entry alone (no fight with the guest over its MAC).
    expect(setupSummary(await agent(['setup', ...args]))).toMatchObject({ writes: 0, actions: [] });
  });
});
