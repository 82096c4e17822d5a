#!/usr/bin/env node
// A live migration you can watch: a tiny guest moves between two agent-plumbed pods and keeps its network (docs/migration.md).
//
// What it does, step by step (each printed as it happens): two pods made the way a kubelet does (bridge + host-local,
// each with its own libvirtd), the source plumbed by `setup` (masquerade, migrationTransport Unix) with `serve`, the
// guest booted (TCG) until its first lease, the target plumbed by `setup --phase migration-target` from the VMI with
// its status (the guest MAC) and serving, `virsh migrate --live --p2p` KubeVirt-style through proxied unix sockets
// while a 10 ms ICMP probe from the node runs, then the source's serve stopped and the source torn down. Everything
// is removed at the end (also on failure or Ctrl-C). Needs root, `scripts/setup.sh` (qemu, libvirt, the tiny guest)
// and `npm run build`; run from the repository root: `node scripts/migration-demo.mjs`. Takes about a minute.
// No ports list: KubeVirt's masquerade then forwards everything to the guest, ICMP too, so the probe's echo replies to
// each pod IP come from the guest itself (with a ports list the pod's own kernel would answer them).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestMissing, parseGuestLines, readConsole, waitForGuestLine } from '../dist/test/helpers/guest.js';
import { libvirtdMissing } from '../dist/test/helpers/libvirtd.js';
import { agentOk, migrate, PodSide, startProbe, withStatus } from '../dist/test/helpers/migration.js';
import { deleteNetns, makeNetns, netnsAvailable, waitFor } from '../dist/test/helpers/netns.js';

const missing = !netnsAvailable() ? 'root and ip netns' : (guestMissing() ?? libvirtdMissing());
if (missing) {
  console.error(`migration-demo: cannot run here: ${missing}`);
  process.exit(2);
}

const started = Date.now();
const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${text}`);
const VMI = `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: demo
  namespace: default
  uid: migration-demo-${process.pid}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
  networks:
  - name: default
    pod: {}
`;

const dir = mkdtempSync(join(tmpdir(), 'vna-migration-demo-'));
const domain = `vna-demo-${process.pid}`;
const a = new PodSide('source', dir);
const b = new PodSide('target', dir);
let node;

async function cleanup() {
  await a.cleanup(domain);
  await b.cleanup(domain);
  if (node) await deleteNetns(node.name).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  node = await makeNetns('vna-demo-node');
  await a.plumb(node, { podCidr: '10.244.91.0/24', rangeStart: '10.244.91.5', rangeEnd: '10.244.91.5' });
  await b.plumb(node, { podCidr: '10.244.91.0/24', rangeStart: '10.244.91.6', rangeEnd: '10.244.91.6' });
  step(`two pods on the node bridge: source ${a.podIp} (eth0 ${a.podMac}), target ${b.podIp} (eth0 ${b.podMac})`);
  const libvirtds = Promise.all([a.startLibvirtd('6c6d667a-0000-4000-8000-0000000000d1'), b.startLibvirtd('6c6d667a-0000-4000-8000-0000000000d2')]);
  const vmiA = a.file('vmi.yaml', `${VMI}status:\n  migrationTransport: Unix\n`);
  await agentOk(['setup', '--vmi', vmiA, ...a.podArgs()]);
  await a.startServe();
  await libvirtds;
  step('source: setup (masquerade) done, serve running, libvirtd up in each pod');

  await a.defineAndStart(vmiA, domain, 'vna.tick=1 vna.renew=3');
  const lease = await waitForGuestLine(a.consoleFile, (l) => l.kind === 'LEASE' && l.fields['if'] === 'eth0', 'the first lease', 900_000);
  const mac = parseGuestLines(readConsole(a.consoleFile)).find((l) => l.kind === 'NIC' && l.fields['if'] === 'eth0')?.fields['mac'] ?? '';
  step(`guest booted (TCG) and leased ${lease.fields['ip']} from the source's serve; its MAC ${mac}`);

  const vmiB = b.file('vmi.yaml', withStatus(VMI, { mac, migrationTransport: 'Unix', podIps: [a.podIp] }));
  await agentOk(['setup', '--vmi', vmiB, '--phase', 'migration-target', ...b.podArgs()]);
  await b.startServe();
  step('target: setup --phase migration-target (guest MAC from the VMI status) done, serve running');

  const probe = await startProbe(node, join(dir, 'probe.log'), [a.podIp, b.podIp]);
  const result = await migrate({ domain, from: a, to: b, node, transport: 'unix' });
  if (!result.ok) throw new Error(`virsh migrate failed: ${result.output}`);
  step(`virsh migrate --live --p2p over proxied unix sockets: ${(result.wallMs / 1000).toFixed(2)} s, qemu downtime ${result.qemuDowntimeMs ?? '?'} ms`);
  // The guest renews every 3 s (vna.renew=3): the target's serve ACKs a lease it never granted.
  const ackOnTarget = () => (b.serve?.output() ?? '').split('\n').find((l) => l.includes('"msgType":"DHCPREQUEST"') && l.includes(`"mac":"${mac}"`));
  await waitFor(async () => ackOnTarget() !== undefined, { timeoutMs: 120_000, intervalMs: 100, what: "a renewal in the target's serve log" });
  const renewal = JSON.parse(ackOnTarget());
  const tick = parseGuestLines(readConsole(b.consoleFile)).filter((l) => l.kind === 'TICK').at(-1);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const probed = await probe.stop();
  step(`on the target: uptime ${tick?.fields['uptime'] ?? '?'} s (no reboot), the target's serve answered its renewal: ${renewal.reply} ${renewal.address}`);
  step(`10 ms probe from the node: longest gap ${probed.longestGapMs.toFixed(0)} ms; replies per pod IP ${JSON.stringify(probed.perTarget)}`);

  await a.stopServe();
  await agentOk(['teardown', '--vmi', vmiA, '--netns', a.pod.path, '--state-dir', a.stateDir]);
  step('source: serve stopped and torn down (the pod is as the CNI made it)');
} catch (error) {
  console.error(`migration-demo: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
  step('cleaned up');
}
