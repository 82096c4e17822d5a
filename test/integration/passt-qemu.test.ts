// The tiny guest under qemu (TCG) on agent-managed passt via -netdev stream: it leases the pod IP, reaches the node netns, and is reachable through a forwarded port.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { passtPortForwards } from '../../bindings/passt.js';
import { streamArgs } from '../../agent/passt/domain-form.js';
import { passtPortArgs } from '../../agent/passt/port-specs.js';
import { startPasstSupervisor, type PasstSupervisor } from '../../agent/passt/supervisor.js';
import type { VmiInterface } from '../../agent/plan/vmi-types.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';

const GUEST = join(process.cwd(), '.cache/guest');
const haveGuest = existsSync(join(GUEST, 'vmlinuz')) && existsSync(join(GUEST, 'initramfs.cpio.gz'));
const log = pino({ level: 'silent' });
const NODE_SERVER = '10.244.33.254';

// Boots the TCG guest (minutes on a loaded machine); VNA_E2E=0 skips it, as the libvirt e2e suite.
describe.skipIf(process.env['VNA_E2E'] === '0' || !netnsAvailable() || !haveGuest)('tiny guest on agent-managed passt (qemu -netdev stream)', () => {
  let cni: CniPod | undefined;
  let supervisor: PasstSupervisor | undefined;
  const children: ChildProcess[] = [];
  let dir = '';

  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    await supervisor?.stop().catch(() => undefined);
    await cni?.cleanup();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('leases the pod IP from passt, fetches from the node netns, and serves on the forwarded port', async () => {
    cni = await makeCniPod({ podCidr: '10.244.33.0/24' });
    const podIp = cni.attachments[0]?.addresses[0]?.split('/')[0] ?? '';
    expect(podIp).toBe('10.244.33.2');
    dir = mkdtempSync(join(tmpdir(), 'vna-passt-qemu-'));
    chmodSync(dir, 0o755);

    // A web server in the node netns (the "node" the guest must reach). Not on the gateway address: passt maps the
    // gateway to the pod's own loopback (its --map-host-loopback default), so the node gets a second address.
    const www = join(dir, 'www');
    mkdirSync(www);
    writeFileSync(join(www, 'hello'), 'hello-from-node');
    await cni.node.execOk(['ip', 'addr', 'add', `${NODE_SERVER}/24`, 'dev', 'cni0']);
    const httpd = spawn('ip', ['netns', 'exec', cni.node.name, 'busybox', 'httpd', '-f', '-p', `${NODE_SERVER}:8000`, '-h', www], { stdio: 'ignore' });
    children.push(httpd);

    const iface = { name: 'default', passtBinding: {}, ports: [{ port: 8080 }] } as VmiInterface;
    supervisor = await startPasstSupervisor({
      netnsPath: cni.pod.path,
      socketDir: join(dir, 'passt'),
      portArgs: passtPortArgs(passtPortForwards(iface, false)),
      log,
    });
    await supervisor.ready(120_000);

    const nic = streamArgs(
      '<interface type="vhostuser"><model type="virtio-non-transitional"/><mac address="02:00:00:0a:0b:0c"/><alias name="ua-default"/><backend type="passt"/></interface>',
      supervisor.socketPath,
    );
    let serial = '';
    const qemu = spawn(
      'qemu-system-x86_64',
      [
        '-accel', 'tcg', '-machine', 'q35', '-m', '256', '-nodefaults', '-nographic', '-no-reboot', '-serial', 'stdio',
        '-kernel', join(GUEST, 'vmlinuz'), '-initrd', join(GUEST, 'initramfs.cpio.gz'),
        '-append', `console=ttyS0 quiet loglevel=3 panic=-1 vna.httpd=8080 vna.fetch=http://${NODE_SERVER}:8000/hello`,
        ...nic.slice(0, 3), `${nic[3] ?? ''},romfile=`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(qemu);
    qemu.stdout?.on('data', (b: Buffer) => (serial += b.toString()));
    qemu.stderr?.on('data', (b: Buffer) => (serial += b.toString()));
    const seen = async (re: RegExp): Promise<void> => {
      try {
        await waitFor(async () => {
          if (qemu.exitCode !== null) throw new Error(`qemu exited ${qemu.exitCode}`);
          return re.test(serial);
        }, { timeoutMs: 400_000, intervalMs: 250, what: `${re} on the guest console` });
      } catch (err) {
        // The console tells why (no NIC, no lease, a slow TCG boot).
        throw new Error(`${err instanceof Error ? err.message : String(err)}; console: ${serial.slice(-1500)}`);
      }
    };

    // passt's DHCP hands out the pod's own address and gateway.
    await seen(/GUEST LEASE if=eth0 ip=10\.244\.33\.2 mask=\S+ router=10\.244\.33\.1 /);
    await seen(/GUEST FETCH (ok|failed)/);
    expect(serial).toContain(`GUEST FETCH ok url=http://${NODE_SERVER}:8000/hello body=hello-from-node`);

    // The node reaches the guest's httpd through passt's forwarded port 8080 on the pod IP.
    let body = '';
    await waitFor(async () => {
      const r = await cni!.node.exec(['busybox', 'timeout', '10', 'busybox', 'wget', '-q', '-O', '-', `http://${podIp}:8080/`], { timeoutMs: 20_000 });
      body = r.stdout;
      return r.code === 0;
    }, { timeoutMs: 120_000, intervalMs: 1_000, what: 'the guest httpd through the forwarded port' });
    expect(body.trim()).toBe('hello-from-guest');
  }, 900_000);
});
