// DHCPv6 + router advertisements on a real dual-stack masquerade pod: ISC `dhclient -6` in a fake-guest netns gets the
// planned address, DNS and search list (as applied), the guest kernel installs its IPv6 default route from our RA (what
// KubeVirt cannot do, #7184/#19193), v6 traffic flows through the masquerade NAT, and the final RA withdraws the route.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DhcpV6Plan } from '../../agent/plan/plan-types.js';
import { makeCniPod } from '../helpers/cni.js';
import { deleteNetns, makeNetns, netnsAvailable, waitFor, type Netns } from '../helpers/netns.js';

const CLI = join(process.cwd(), 'dist/agent/cli/cli.js');
const SERVE = join(process.cwd(), 'dist/test/helpers/dhcp-v6-serve.js');
const RESOLV_CONF = 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\nnameserver fd00:10:96::a\noptions ndots:5\n';

/** dhclient-script stand-in: applies the IA_NA address like Debian's script and records what it was given. */
const DHCLIENT_SCRIPT = `#!/bin/sh
env | grep -E '^(reason|interface|new_|old_)' | sort > "$(dirname "$0")/env.$reason"
case "$reason" in
  BOUND6|RENEW6|REBIND6|REBOOT6)
    ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" valid_lft "$new_max_life" preferred_lft "$new_preferred_life" ;;
esac
exit 0
`;

function vmiYaml(uid: string): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: testvmi
  namespace: default
  uid: ${uid}
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
}

function agent(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Spawns a long-running process inside a netns and collects its stdout. */
function spawnIn(ns: Netns, argv: readonly string[]): { child: ChildProcessWithoutNullStreams; output: () => string; exited: Promise<number | null> } {
  const child = spawn('ip', ['netns', 'exec', ns.name, ...argv]);
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function noTentative(ns: Netns, dev: string): Promise<boolean> {
  const out = (await ns.execOk(['ip', '-6', 'addr', 'show', 'dev', dev])).stdout;
  return out.includes('fe80::') && !out.includes('tentative');
}

describe.skipIf(!netnsAvailable())('DHCPv6 and router advertisements on a masquerade pod', { timeout: 300_000 }, () => {
  it('dhclient -6 gets the planned address, DNS and search list; the guest kernel takes its default route from our RA', async () => {
    const cni = await makeCniPod({ podCidr: '10.244.12.0/24', podCidr6: 'fd00:10:244:12::/64', mtu: 1450 });
    const dir = mkdtempSync(join(tmpdir(), 'vna-dhcp6-'));
    let guest: Netns | undefined;
    let server: ReturnType<typeof spawnIn> | undefined;
    let capture: ReturnType<typeof spawnIn> | undefined;
    try {
      const uid = `dhcp6-${process.pid}-${Math.random().toString(16).slice(2)}`;
      writeFileSync(join(dir, 'vmi.yaml'), vmiYaml(uid));
      writeFileSync(join(dir, 'resolv.conf'), RESOLV_CONF);
      const stateDir = join(dir, 'state');
      const setup = await agent(['setup', '--vmi', join(dir, 'vmi.yaml'), '--netns', cni.pod.path, '--state-dir', stateDir, '--resolv-conf', join(dir, 'resolv.conf')]);
      expect(setup.stderr).toBe('');
      expect(setup.code).toBe(0);

      // The DhcpV6Plan exactly as setup recorded it for serve.
      const state = JSON.parse(readFileSync(join(stateDir, uid, 'state.json'), 'utf8')) as { networks: Record<string, { dhcpv6?: DhcpV6Plan | null }> };
      const plan = state.networks['default']?.dhcpv6;
      if (!plan) throw new Error('setup recorded no dhcpv6 plan');
      expect(plan.ra).not.toBeNull();
      writeFileSync(join(dir, 'plan6.json'), JSON.stringify(plan));

      // The fake guest: a veth on the bridge where qemu's tap would be; a host (accept_ra, no forwarding).
      guest = await makeNetns('vna-g6');
      await cni.pod.execOk(['ip', 'link', 'add', 'vguest', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guest.name]);
      await cni.pod.execOk(['ip', 'link', 'set', 'vguest', 'master', 'k6t-eth0', 'up']);
      // The guest has the MAC the plan gave the domain (the pod's eth0 MAC): the bridge resolves 10.0.2.2 to it.
      await guest.execOk(['ip', 'link', 'set', 'eth0', 'address', cni.attachments[0]?.mac ?? '']);
      await guest.execOk(['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=0', 'net.ipv6.conf.default.accept_ra=1']);
      await guest.execOk(['ip', 'link', 'set', 'eth0', 'mtu', '1450']);

      // Start the services inside the pod netns before the guest link comes up; capture the first RA the guest sees.
      server = spawnIn(cni.pod, [process.execPath, SERVE, join(dir, 'plan6.json')]);
      await waitFor(async () => server!.output().includes('READY'), { timeoutMs: 60_000, intervalMs: 100, what: 'the DHCPv6 server and advertiser' });
      // On the guest's bridge port (up already; the guest end cannot be captured before it is up).
      capture = spawnIn(cni.pod, ['tcpdump', '-i', 'vguest', '-n', '-vv', '-l', '-c', '1', 'icmp6 and ip6[40] == 134']);
      await waitFor(async () => capture!.output().includes('listening on'), { timeoutMs: 30_000, intervalMs: 100, what: 'tcpdump on the guest port' });
      await guest.execOk(['sysctl', '-q', '-w', 'net.ipv6.conf.eth0.accept_ra=1', 'net.ipv6.conf.eth0.forwarding=0']);
      await guest.execOk(['ip', 'link', 'set', 'eth0', 'up']);
      await waitFor(() => noTentative(guest!, 'eth0'), { timeoutMs: 30_000, intervalMs: 100, what: 'the guest link-local address (DAD)' });

      // 1. The kernel's default route from the RA (the guest solicits on link-up; the advertiser answers).
      await waitFor(async () => (await guest!.execOk(['ip', '-6', 'route', 'show', 'default'])).stdout.includes('proto ra'), {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'the guest default route from the RA',
      });
      const route = (await guest.execOk(['ip', '-6', 'route', 'show', 'default'])).stdout.trim();
      expect(route).toMatch(/^default via fe80::ff:fe00:0 dev eth0 proto ra metric \d+ expires \d+sec/);
      // The on-link prefix (L=1, A=0) from the RA: a route with an expiry, no SLAAC address.
      expect((await guest.execOk(['ip', '-6', 'route', 'show', 'fd10:0:2::/120'])).stdout).toMatch(/dev eth0 proto kernel metric \d+ expires/);
      expect((await guest.execOk(['sysctl', '-n', 'net.ipv6.conf.eth0.mtu'])).stdout.trim()).toBe('1450');
      expect((await guest.execOk(['ip', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).stdout).toBe(''); // A=0: no SLAAC

      // tcpdump, an independent decoder, reads the RA as we meant it.
      expect(await capture.exited).toBe(0);
      const ra = capture.output();
      expect(ra).toMatch(/fe80::ff:fe00:0 > (ff02::1|fe80::[0-9a-f:]+): \[icmp6 sum ok\] ICMP6, router advertisement/);
      expect(ra).toContain('hop limit 64, Flags [managed, other stateful], pref medium, router lifetime 1800s');
      expect(ra).toContain('source link-address option (1), length 8 (1): 02:00:00:00:00:00');
      expect(ra).toContain('mtu option (5), length 8 (1):  1450');
      expect(ra).toMatch(/prefix info option \(3\), length 32 \(4\): fd10:0:2::\/120, Flags \[onlink\]/);
      expect(ra).toContain('rdnss option (25), length 24 (3):  lifetime 1800s, addr: fd00:10:96::a');
      expect(ra).toContain('dnssl option (31)');
      expect(ra).toContain('default.svc.cluster.local.');

      // 2. dhclient -6: the planned address, as applied, and the options as the client parsed them.
      writeFileSync(join(dir, 'dhclient-script'), DHCLIENT_SCRIPT);
      chmodSync(join(dir, 'dhclient-script'), 0o755);
      const started = Date.now();
      const dhclient = await guest.exec(
        ['dhclient', '-6', '-1', '-v', '-sf', join(dir, 'dhclient-script'), '-lf', join(dir, 'dhclient6.leases'), '-pf', join(dir, 'dhclient6.pid'), 'eth0'],
        { timeoutMs: 60_000 },
      );
      const leaseMs = Date.now() - started;
      expect(dhclient.code, dhclient.stderr).toBe(0);
      try {
        process.kill(Number(readFileSync(join(dir, 'dhclient6.pid'), 'utf8').trim()), 'SIGTERM');
      } catch {
        // dhclient -1 may already have exited
      }
      expect(dhclient.stderr).toMatch(/Advertise/i);
      expect(dhclient.stderr).toMatch(/Reply/i);
      const env = readFileSync(join(dir, 'env.BOUND6'), 'utf8');
      expect(env).toContain('new_ip6_address=fd10:0:2::2');
      expect(env).toContain('new_dhcp6_name_servers=fd00:10:96::a');
      expect(env).toMatch(/new_dhcp6_domain_search=default\.svc\.cluster\.local\.? svc\.cluster\.local\.? cluster\.local\.?/);
      expect(env).toContain('new_max_life=86313600');
      expect(env).toContain('new_dhcp6_server_id=0:3:0:1:2:0:0:0:0:0');
      expect((await guest.execOk(['ip', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).stdout).toContain('inet6 fd10:0:2::2/');
      const exchanges = server.output().split('\n').filter((line) => line.includes('"msg":"dhcpv6 '));
      expect(exchanges.some((line) => line.includes('"type":"SOLICIT"') && line.includes('"reply":"ADVERTISE"') && line.includes('"address":"fd10:0:2::2"'))).toBe(true);
      expect(exchanges.some((line) => line.includes('"type":"REQUEST"') && line.includes('"reply":"REPLY"'))).toBe(true);
      process.stdout.write(`dhclient -6 lease in ${leaseMs} ms\n${env}\nRA as tcpdump decoded it:\n${ra}\n`);

      // 3. Data path: the bridge's v6 gateway on-link, and the node through the masquerade NAT (ip6 saddr → pod IP).
      const gw = await guest.exec(['busybox', 'ping', '-6', '-c', '2', '-W', '5', 'fd10:0:2::1']);
      expect(gw.stdout).toContain('2 packets received');
      // ttl 63: the reply came back through the pod (forwarded, de-NATed); a late echo on this loaded 2-core box is
      // tolerated, silence is not.
      const nodeSide = await guest.exec(['busybox', 'ping', '-6', '-c', '3', '-W', '5', 'fd00:10:244:12::1']);
      expect(nodeSide.stdout).toMatch(/\b[123] packets received/);
      expect(nodeSide.stdout).toMatch(/from fd00:10:244:12::1: seq=\d+ ttl=63/);

      // 4. close(): the final RA (router lifetime 0) makes the guest drop the default route at once.
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(server.output()).toContain('CLOSED');
      await waitFor(async () => !(await guest!.execOk(['ip', '-6', 'route', 'show', 'default'])).stdout.includes('proto ra'), {
        timeoutMs: 10_000,
        intervalMs: 100,
        what: 'the guest to drop the default route after the final RA',
      });
    } finally {
      server?.child.kill('SIGKILL');
      capture?.child.kill('SIGKILL');
      if (guest) await deleteNetns(guest.name);
      await cni.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
