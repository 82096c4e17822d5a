// The serving core in one process for several pods: sockets made inside each pod's namespace and bound to its bridge,
// real udhcpc clients leasing from all of them, a flooding guest that cannot starve the others, a broken or vanished
// attachment that never stops the rest, and remove() closing every descriptor it opened.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { agent, attachGuest, udhcpc } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAvailable, waitFor, type Netns } from '../helpers/netns.js';
import { startServeMany } from '../helpers/serve-many-client.js';

function vmiYaml(uid: string): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: corevmi, namespace: default, uid: ${uid}}
spec:
  domain: {devices: {interfaces: [{name: default, masquerade: {}}]}}
  networks: [{name: default, pod: {}}]
`;
}

/** Socket inodes of a process's descriptors, and how many descriptors it has. */
function descriptors(pid: number): { count: number; sockets: Set<string> } {
  const sockets = new Set<string>();
  const entries = readdirSync(`/proc/${pid}/fd`);
  for (const entry of entries) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${entry}`));
      if (match) sockets.add(match[1]!);
    } catch {
      // closed while listing
    }
  }
  return { count: entries.length, sockets };
}

/** Inodes of the UDP sockets listening on :67 in a namespace, with the device each is bound to. */
async function udp67(ns: Netns): Promise<{ inode: string; local: string }[]> {
  const out = (await ns.execOk(['ss', '-Huanpe', 'sport = :67'])).stdout;
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => ({ inode: /ino:(\d+)/.exec(line)?.[1] ?? '', local: line.split(/\s+/)[3] ?? '' }));
}

/** A guest sending DHCPDISCOVERs as fast as it can for `seconds` (a flood); resolves with how many it sent. */
function flood(guest: Netns, seconds: number): Promise<number> {
  const script = `
import socket, struct, time, os
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'eth0')
s.bind(('0.0.0.0', 68))
mac = bytes.fromhex('02aabbccdd01')
def discover(xid):
    h = struct.pack('!BBBBIHH4s4s4s4s16s64s128s', 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4), bytes(4), bytes(4), mac + bytes(10), bytes(64), bytes(128))
    return h + bytes([99, 130, 83, 99, 53, 1, 1, 255])
end = time.time() + ${seconds}
n = 0
while time.time() < end:
    for _ in range(100):
        try:
            s.sendto(discover(n), ('255.255.255.255', 67))
        except OSError:
            pass
        n += 1
print(n)
`;
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', guest.name, 'python3', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`flood exited ${String(code)}: ${err}`))));
  });
}

describe.skipIf(!netnsAvailable())('serving core: many pods from one process', { timeout: 600_000 }, () => {
  let workDir: string;
  const pods: CniPod[] = [];
  const guests: Netns[] = [];
  const stateDirs: string[] = [];

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'vna-core-'));
    for (let i = 0; i < 3; i++) {
      const pod = await makeCniPod({ podCidr: `10.244.${40 + i}.0/24` });
      pods.push(pod);
      const dir = join(workDir, `pod${i}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'vmi.yaml'), vmiYaml(`core-${process.pid}-${i}`));
      const stateDir = join(dir, 'state');
      const setup = await agent(['setup', '--vmi', join(dir, 'vmi.yaml'), '--netns', pod.pod.path, '--state-dir', stateDir, '--resolv-conf', '/dev/null']);
      expect(setup.stderr).toBe('');
      stateDirs.push(join(stateDir, `core-${process.pid}-${i}`));
    }
  }, 300_000);

  afterAll(async () => {
    for (const guest of guests) await deleteNetns(guest.name);
    for (const pod of pods) await pod.cleanup();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('serves three pods from one process; a broken attachment fails alone; a flooding guest does not starve the others; remove closes every descriptor', async () => {
    const server = await startServeMany(join(workDir, 'serve-many.log'));
    try {
      const baseline = descriptors(server.pid);
      for (const [i, pod] of pods.entries()) {
        const added = await server.request({ op: 'add', id: `pod${i}`, netns: pod.pod.path, stateDir: stateDirs[i] });
        expect(added).toMatchObject({ ok: true, services: ['dhcpv4 k6t-eth0'] });
      }
      // An attachment whose bridge is not there (setup never ran for it in that namespace): refused alone.
      const ghostDir = join(workDir, 'ghost');
      mkdirSync(ghostDir);
      const state = JSON.parse(readFileSync(join(stateDirs[0]!, 'state.json'), 'utf8')) as { networks: Record<string, { bridge: string; dhcp: { interface: string } }> };
      const network = state.networks['default']!;
      writeFileSync(join(ghostDir, 'state.json'), JSON.stringify({ ...state, networks: { default: { ...network, bridge: 'k6t-ghost', dhcp: { ...network.dhcp, interface: 'k6t-ghost' } } } }));
      const ghost = await server.request({ op: 'add', id: 'ghost', netns: pods[0]!.pod.path, stateDir: ghostDir });
      expect(ghost['ok']).toBe(false);
      expect(String(ghost['error'])).toMatch(/^cannot start dhcpv4 on k6t-ghost: .*ENODEV.*\(run setup first\)$/);
      // So is a namespace that does not exist.
      const gone = await server.request({ op: 'add', id: 'gone', netns: join(workDir, 'no-such-netns'), stateDir: stateDirs[0] });
      expect(gone).toMatchObject({ ok: false, error: expect.stringMatching(/no such network namespace/) });

      // Every socket the process opened lives in a pod's namespace, bound to that pod's bridge (not in ours).
      const opened = descriptors(server.pid);
      expect(opened.count).toBe(baseline.count + 3 * 3); // per pod: the DHCPv4 socket and the namespace scope's 2 fds
      for (const pod of pods) {
        const listening = await udp67(pod.pod);
        expect(listening).toHaveLength(1);
        expect(listening[0]!.local).toBe('0.0.0.0%k6t-eth0:67');
        expect(opened.sockets.has(listening[0]!.inode)).toBe(true);
      }

      // Real clients lease from all three at once, each its own pod's address.
      for (const pod of pods) guests.push(await attachGuest(pod.pod, 'k6t-eth0', 'vguest', pod.attachments[0]!.mac));
      const leases = await Promise.all(guests.map((guest, i) => udhcpc(guest, mkdtempSync(join(workDir, `client${i}-`)))));
      expect(leases.map((run) => run.lease.addresses)).toEqual([['10.0.2.2/24'], ['10.0.2.2/24'], ['10.0.2.2/24']]);
      expect(leases.map((run) => run.lease.env['serverid'])).toEqual(['10.0.2.1', '10.0.2.1', '10.0.2.1']);

      // A guest of pod0 floods DISCOVERs; pod1's guest still gets its lease meanwhile, and pod0 is rate-limited.
      const flooder = await attachGuest(pods[0]!.pod, 'k6t-eth0', 'vflood');
      guests.push(flooder);
      const flooding = flood(flooder, 6);
      await waitFor(async () => server.logs().some((line) => line['msg'] === 'dhcpv4 requests over the rate limit: reading paused'), { timeoutMs: 30_000, intervalMs: 100, what: 'pod0 rate-limited' });
      const during = await udhcpc(guests[1]!, mkdtempSync(join(workDir, 'during-')));
      expect(during.lease.addresses).toEqual(['10.0.2.2/24']);
      const sent = await flooding;
      const logs = server.logs();
      const limited = logs.filter((line) => line['msg'] === 'dhcpv4 requests over the rate limit: reading paused');
      expect(limited.every((line) => line['attachment'] === 'pod0')).toBe(true);
      // pod0's guest-triggered lines were cut to the log budget; pod1 still logged its exchanges.
      const pod0Lines = logs.filter((line) => line['attachment'] === 'pod0' && line['reply'] !== undefined).length;
      expect(pod0Lines).toBeLessThan(sent / 10);
      expect(logs.some((line) => line['attachment'] === 'pod1' && line['reply'] === 'DHCPACK')).toBe(true);
      process.stdout.write(`flood: ${sent} DISCOVERs from pod0's guest in 6 s; pod0 logged ${pod0Lines} replies; pod1's lease during the flood took ${during.elapsedMs.toFixed(0)} ms\n`);

      // pod2's namespace disappears under the core: pod0 and pod1 go on; removing pod2 closes its descriptors.
      await deleteNetns(pods[2]!.pod.name);
      const renew = await udhcpc(guests[0]!, mkdtempSync(join(workDir, 'after-')));
      expect(renew.lease.addresses).toEqual(['10.0.2.2/24']);
      for (const id of ['pod0', 'pod1', 'pod2']) expect(await server.request({ op: 'remove', id })).toMatchObject({ ok: true });
      expect(descriptors(server.pid).count).toBe(baseline.count);
      for (const pod of pods.slice(0, 2)) expect(await udp67(pod.pod)).toEqual([]);
      const errors = server.logs().filter((line) => Number(line['level']) >= 50);
      expect(errors).toEqual([]);
    } finally {
      await server.stop();
    }
  });

  it('a guest flooding router solicitations is read at most 10/s: its log says so, and another pod\'s guest still gets its RA', async () => {
    const dual: CniPod[] = [];
    const dualGuests: Netns[] = [];
    const server = await startServeMany(join(workDir, 'serve-many-rs.log'));
    try {
      for (let i = 0; i < 2; i++) {
        const pod = await makeCniPod({ podCidr: `10.244.${50 + i}.0/24`, podCidr6: `fd00:10:244:${50 + i}::/64` });
        dual.push(pod);
        const dir = join(workDir, `dual${i}`);
        mkdirSync(dir);
        writeFileSync(join(dir, 'vmi.yaml'), vmiYaml(`core-rs-${process.pid}-${i}`));
        const setup = await agent(['setup', '--vmi', join(dir, 'vmi.yaml'), '--netns', pod.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null']);
        expect(setup.stderr).toBe('');
        const added = await server.request({ op: 'add', id: `dual${i}`, netns: pod.pod.path, stateDir: join(dir, 'state', `core-rs-${process.pid}-${i}`) });
        expect(added).toMatchObject({ ok: true, services: ['dhcpv4 k6t-eth0', 'dhcpv6 k6t-eth0', 'ra k6t-eth0'] });
      }
      for (const pod of dual) dualGuests.push(await attachGuest(pod.pod, 'k6t-eth0', 'vguest'));
      const linkLocalReady = async (guest: Netns): Promise<boolean> => {
        const out = (await guest.execOk(['ip', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout;
        return out.includes('fe80::') && !out.includes('tentative');
      };
      for (const guest of dualGuests) await waitFor(() => linkLocalReady(guest), { timeoutMs: 30_000, intervalMs: 100, what: 'the guest link-local address' });

      // dual0's guest floods RS (raw ICMPv6 type 133 to ff02::2, hop limit 255) for 5 s.
      const script = `
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.SOL_SOCKET, 25, b'eth0')
idx = socket.if_nametoindex('eth0')
rs = bytes([133, 0, 0, 0, 0, 0, 0, 0])
n, end = 0, time.time() + 5
while time.time() < end:
    try:
        s.sendto(rs, ('ff02::2', 0, 0, idx))
        n += 1
    except OSError:
        pass
print(n)
`;
      const flooding = dualGuests[0]!.exec(['python3', '-c', script], { timeoutMs: 60_000 });
      await waitFor(async () => server.logs().some((line) => line['msg'] === 'router solicitations over the rate limit: reading paused'), { timeoutMs: 30_000, intervalMs: 100, what: 'the RS flood rate-limited' });
      // Meanwhile dual1's guest solicits (accept_ra, link down/up) and its kernel takes the default route from our RA.
      await dualGuests[1]!.execOk(['sysctl', '-q', '-w', 'net.ipv6.conf.eth0.accept_ra=1', 'net.ipv6.conf.eth0.forwarding=0']);
      await dualGuests[1]!.execOk(['ip', 'link', 'set', 'eth0', 'down']);
      await dualGuests[1]!.execOk(['ip', 'link', 'set', 'eth0', 'up']);
      await waitFor(async () => (await dualGuests[1]!.execOk(['ip', '-6', 'route', 'show', 'default'])).stdout.includes('proto ra'), { timeoutMs: 30_000, intervalMs: 100, what: "dual1's guest default route from the RA during the flood" });
      const sent = Number((await flooding).stdout.trim());
      const logs = server.logs();
      const limited = logs.filter((line) => line['msg'] === 'router solicitations over the rate limit: reading paused');
      expect(limited.every((line) => line['attachment'] === 'dual0')).toBe(true);
      // At most the burst and 10/s were answered: a handful of solicited RAs, not one per RS.
      const solicited = logs.filter((line) => line['attachment'] === 'dual0' && String(line['msg']).startsWith('router advertisement (solicited'));
      expect(solicited.length).toBeLessThan(100);
      expect(sent).toBeGreaterThan(1000);
      process.stdout.write(`RS flood: ${sent} RS in 5 s from dual0's guest; ${solicited.length} solicited RAs logged for it\n`);
      expect(logs.filter((line) => Number(line['level']) >= 50)).toEqual([]);
    } finally {
      await server.stop();
      for (const guest of dualGuests) await deleteNetns(guest.name);
      for (const pod of dual) await pod.cleanup();
    }
  });
});
