// The cni-daemon serves every guest of the node (issue 27): podman runs 20 containers on bridge + host-local + ours
// (masquerade, dual stack); a fake guest on each container's k6t-eth0 leases with udhcpc and `dhclient -6`, all at
// once, from the one daemon; after `kill -9` and a restart every guest renews and is ACKed with its address; podman
// rm -f (DEL) stops the serving and the daemon's descriptor count returns to its baseline.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { daemonLogLines, startDaemonProcess, type DaemonProcess } from '../helpers/cni-shim.js';
import { deleteNetns, makeNetns, run, waitFor, type Netns } from '../helpers/netns.js';
import { makePodman, podmanUnavailable, type Podman } from '../helpers/podman.js';
import { udhcpc } from '../helpers/dhcp-guest.js';

const unavailable = podmanUnavailable();
const PODS = 20;

/** udhcpc's script: applies the lease and appends "<event> <ip>" to events. */
const UDHCPC_SCRIPT = `#!/bin/sh
dir="$(dirname "$0")"
case "$1" in
deconfig) ip -4 addr flush dev "$interface"; ip link set dev "$interface" up ;;
bound|renew) ip addr replace "$ip/$subnet" dev "$interface"; echo "$1 $ip $serverid" >> "$dir/events" ;;
esac
exit 0
`;

/** dhclient -6's script: applies the IA_NA address and records it. */
const DHCLIENT6_SCRIPT = `#!/bin/sh
dir="$(dirname "$0")"
case "$reason" in
BOUND6|RENEW6|REBIND6|REBOOT6)
  ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface"
  echo "$reason $new_ip6_address" >> "$dir/events6" ;;
esac
exit 0
`;

interface Guest {
  readonly ns: Netns;
  readonly dir: string;
  udhcpc: ChildProcess | null;
}

/** A namespace podman made (its sandbox file under /run/netns), as the netns helpers see one. */
function sandboxNetns(sandbox: string): Netns {
  const name = basename(sandbox);
  const exec = (cmd: readonly string[], opts?: { input?: string; timeoutMs?: number }) => run(['ip', 'netns', 'exec', name, ...cmd], opts);
  return {
    name,
    path: sandbox,
    exec,
    async execOk(cmd, opts) {
      const r = await exec(cmd, opts);
      if (r.code !== 0) throw new Error(`in ${name}: ${cmd.join(' ')} (exit ${r.code}): ${r.stderr.trim()}`);
      return r;
    },
  };
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((line) => line !== '') : [];
}

describe.skipIf(unavailable !== null)(`the cni-daemon serves the guests of its attachments${unavailable !== null ? ` (skipped: ${unavailable})` : ''}`, { timeout: 900_000 }, () => {
  let dir: string;
  let p: Podman;
  let config: string;
  let socket: string;
  let daemon: DaemonProcess | undefined;
  const guests: Guest[] = [];
  const tag = randomBytes(3).toString('hex');
  const octet = 1 + ((randomBytes(1)[0] ?? 0) % 250);
  const network = `vnas${tag}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-daemon-serve-'));
    p = await makePodman(dir);
    config = writeAgentConfig(dir);
    socket = join(dir, 'cni.sock');
    daemon = await startDaemonProcess(socket, { config });
    writeFileSync(join(p.pluginDir, 'virt-net-agent.conf'), `socket=${socket}\nconfig=${config}\n`);
    p.addNetwork(network, [
      {
        type: 'bridge',
        bridge: `vnab${tag}`,
        isGateway: true,
        ipMasq: false,
        ipam: {
          type: 'host-local',
          dataDir: p.ipamDir,
          ranges: [[{ subnet: `10.214.${octet}.0/24` }], [{ subnet: `fd00:214:${octet.toString(16)}::/64` }]],
          routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
        },
      },
      { type: 'virt-net-agent', binding: 'masquerade' },
    ]);
  }, 300_000);

  afterAll(async () => {
    for (const guest of guests) {
      guest.udhcpc?.kill('SIGKILL');
      await deleteNetns(guest.ns.name);
    }
    await daemon?.stop();
    await p?.cleanup();
  }, 300_000);

  /** A fake guest on the container's k6t-eth0 (a veth where qemu's tap would be), link up, DAD done. */
  async function guestOn(sandbox: string, index: number): Promise<Guest> {
    const pod = sandboxNetns(sandbox);
    const ns = await makeNetns('vna-dguest');
    const guestDir = join(dir, `guest${index}`);
    mkdirSync(guestDir);
    await pod.execOk(['ip', 'link', 'add', 'vguest', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    await pod.execOk(['ip', 'link', 'set', 'vguest', 'master', 'k6t-eth0', 'up']);
    await ns.execOk(['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=0', 'net.ipv6.conf.default.accept_ra=1']);
    await ns.execOk(['ip', 'link', 'set', 'eth0', 'up']);
    return { ns, dir: guestDir, udhcpc: null };
  }

  it(`${PODS} containers: their guests lease v4 and v6 from the daemon at once; kill -9 and a restart: every guest renews and is ACKed; rm -f closes the sockets`, async () => {
    // Warm-up: one container through ADD and DEL, so what the daemon opens once (the raw-socket poller, the netlink
    // worker) is in the baseline.
    expect((await p.runContainer('warm', network)).code).toBe(0);
    await waitFor(async () => daemonLogLines(daemon!).some((line) => line['msg'] === 'attachment served'), { timeoutMs: 60_000, intervalMs: 100, what: 'warm-up served' });
    expect((await p.podman(['rm', '-f', '-t', '0', 'warm'])).code).toBe(0);
    const baseline = fdCount(daemon!.child.pid!);

    const names = Array.from({ length: PODS }, (_, i) => `vm${i}`);
    for (const name of names) {
      const r = await p.runContainer(name, network);
      expect(r.code, r.stderr).toBe(0);
    }
    const sandboxes = await Promise.all(names.map(async (name) => (await p.inspect(name)).sandbox));
    for (const [i, sandbox] of sandboxes.entries()) guests.push(await guestOn(sandbox, i));
    // Each attachment was served before its ADD was answered (the log line may trail the answer a little).
    await waitFor(async () => daemonLogLines(daemon!).filter((line) => line['msg'] === 'attachment served').length === PODS + 1, { timeoutMs: 10_000, intervalMs: 50, what: `${PODS + 1} attachments served` });
    const served = daemonLogLines(daemon!).filter((line) => line['msg'] === 'attachment served');
    expect(served.at(-1)!['services']).toEqual(['dhcpv4 k6t-eth0', 'dhcpv6 k6t-eth0', 'ra k6t-eth0']);
    const perAttachment = (fdCount(daemon!.child.pid!) - baseline) / PODS;
    expect(perAttachment).toBe(5); // 3 sockets and the namespace scope's 2 descriptors

    // udhcpc in every guest at once (it stays running: SIGUSR1 renews), then dhclient -6 in every guest at once.
    for (const guest of guests) {
      writeFileSync(join(guest.dir, 'udhcpc.sh'), UDHCPC_SCRIPT);
      chmodSync(join(guest.dir, 'udhcpc.sh'), 0o755);
      guest.udhcpc = spawn('ip', ['netns', 'exec', guest.ns.name, 'udhcpc', '-f', '-i', 'eth0', '-t', '30', '-T', '1', '-A', '1', '-s', join(guest.dir, 'udhcpc.sh')], { stdio: 'ignore' });
    }
    await waitFor(async () => guests.every((guest) => lines(join(guest.dir, 'events')).some((line) => line.startsWith('bound '))), { timeoutMs: 180_000, intervalMs: 200, what: `${PODS} udhcpc leases` });
    for (const guest of guests) expect(lines(join(guest.dir, 'events'))[0]).toBe('bound 10.0.2.2 10.0.2.1');

    await waitFor(async () => (await Promise.all(guests.map(async (guest) => {
            const out = (await guest.ns.execOk(['ip', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout;
            return out.includes('fe80::') && !out.includes('tentative');
          }))).every(Boolean), { timeoutMs: 60_000, intervalMs: 200, what: 'guest link-local addresses (DAD)' });
    const v6 = await Promise.all(
      guests.map(async (guest) => {
        writeFileSync(join(guest.dir, 'dhclient6.sh'), DHCLIENT6_SCRIPT);
        chmodSync(join(guest.dir, 'dhclient6.sh'), 0o755);
        return guest.ns.exec(['dhclient', '-6', '-1', '-v', '-sf', join(guest.dir, 'dhclient6.sh'), '-lf', join(guest.dir, 'dhclient6.leases'), '-pf', join(guest.dir, 'dhclient6.pid'), 'eth0'], { timeoutMs: 180_000 });
      }),
    );
    for (const [i, r] of v6.entries()) {
      expect(r.code, r.stderr).toBe(0);
      expect(lines(join(guests[i]!.dir, 'events6'))).toContain('BOUND6 fd10:0:2::2');
      try {
        process.kill(Number(readFileSync(join(guests[i]!.dir, 'dhclient6.pid'), 'utf8').trim()), 'SIGTERM');
      } catch {
        // dhclient -1 may have exited already
      }
    }
    // The RA too: every guest kernel took its default route from the daemon's advertisements.
    for (const guest of guests) {
      await waitFor(async () => (await guest.ns.execOk(['ip', '-6', 'route', 'show', 'default'])).stdout.includes('proto ra'), { timeoutMs: 60_000, intervalMs: 200, what: 'default route from the RA' });
    }

    // kill -9 and a restart: the new daemon adopts all attachments without touching a link; every guest renews.
    const linksBefore = await Promise.all(sandboxes.map(async (sandbox) => (await sandboxNetns(sandbox).execOk(['ip', '-o', 'link', 'show'])).stdout.replace(/\s+/g, ' ')));
    daemon!.child.kill('SIGKILL');
    await daemon!.stop();
    daemon = await startDaemonProcess(socket, { config });
    const adopted = daemonLogLines(daemon).find((line) => line['msg'] === 'attachments adopted');
    expect(adopted).toMatchObject({ served: PODS, dropped: 0, failed: 0 });
    process.stdout.write(`restart: ${PODS} attachments adopted in ${String(adopted!['ms'])} ms\n`);
    for (const guest of guests) guest.udhcpc!.kill('SIGUSR1');
    await waitFor(async () => guests.every((guest) => lines(join(guest.dir, 'events')).some((line) => line.startsWith('renew '))), { timeoutMs: 120_000, intervalMs: 200, what: `${PODS} renewals after the restart` });
    for (const guest of guests) expect(lines(join(guest.dir, 'events')).find((line) => line.startsWith('renew '))).toBe('renew 10.0.2.2 10.0.2.1');
    const acks = daemonLogLines(daemon).filter((line) => line['reply'] === 'DHCPACK' && line['msgType'] === 'DHCPREQUEST');
    expect(new Set(acks.map((line) => line['attachment'])).size).toBe(PODS);
    expect(acks.every((line) => line['address'] === '10.0.2.2')).toBe(true);
    const linksAfter = await Promise.all(sandboxes.map(async (sandbox) => (await sandboxNetns(sandbox).execOk(['ip', '-o', 'link', 'show'])).stdout.replace(/\s+/g, ' ')));
    expect(linksAfter).toEqual(linksBefore);

    // A rolling update (the old daemon gets SIGTERM, a new one starts): the old one withdraws no route (no final RA),
    // the new one answers the next renewals.
    expect(await daemon.stop()).toBe(0);
    for (const guest of guests) expect((await guest.ns.execOk(['ip', '-6', 'route', 'show', 'default'])).stdout).toContain('proto ra');
    daemon = await startDaemonProcess(socket, { config });
    for (const guest of guests) guest.udhcpc!.kill('SIGUSR1');
    await waitFor(async () => guests.every((guest) => lines(join(guest.dir, 'events')).filter((line) => line === 'renew 10.0.2.2 10.0.2.1').length === 2), { timeoutMs: 120_000, intervalMs: 200, what: `${PODS} renewals after the rolling update` });
    for (const guest of guests) expect((await guest.ns.execOk(['ip', '-6', 'route', 'show', 'default'])).stdout).toContain('proto ra');

    // DEL (podman rm -f) stops the serving: the restarted daemon's descriptors go back to what it had before.
    const restartedBaseline = fdCount(daemon.child.pid!) - PODS * perAttachment;
    for (const guest of guests) {
      guest.udhcpc?.kill('SIGKILL');
      guest.udhcpc = null;
    }
    for (const name of names) expect((await p.podman(['rm', '-f', '-t', '0', name])).code).toBe(0);
    await waitFor(async () => fdCount(daemon!.child.pid!) === restartedBaseline, { timeoutMs: 30_000, intervalMs: 100, what: `the daemon's descriptors back to ${restartedBaseline}` });
    await waitFor(async () => daemonLogLines(daemon!).filter((line) => line['msg'] === 'attachment no longer served' && line['why'] === 'DEL').length === PODS, { timeoutMs: 10_000, intervalMs: 50, what: `${PODS} DELs logged` });
    expect(daemonLogLines(daemon).filter((line) => Number(line['level']) >= 50)).toEqual([]);
  });

  it('a container plumbed by the fallback executable while no daemon ran is served at the next start; a namespace that vanished without a DEL is dropped and reported, at start and while serving', async () => {
    await daemon!.stop();
    // No daemon: the shim runs the fallback executable, which plumbs and records the attachments (and serves nothing).
    for (const name of ['late', 'ghost']) {
      const r = await p.runContainer(name, network);
      expect(r.code, r.stderr).toBe(0);
    }
    const late = (await p.inspect('late')).sandbox;
    const ghost = (await p.inspect('ghost')).sandbox;
    // ghost's namespace file disappears without a DEL (the container's process still holds the namespace itself).
    await run(['ip', 'netns', 'del', basename(ghost)]);
    daemon = await startDaemonProcess(socket, { config });
    expect(daemonLogLines(daemon).find((line) => line['msg'] === 'attachments adopted')).toMatchObject({ served: 1, dropped: 1, failed: 0 });
    const reported = daemonLogLines(daemon).find((line) => String(line['msg']).startsWith('attachment not adopted: its namespace is gone'));
    expect(String(reported?.['attachment'])).toMatch(new RegExp(`^${network}\\..*\\.eth0$`));

    const guest = await guestOn(late, 100);
    guests.push(guest);
    const lease = await udhcpc(guest.ns, guest.dir);
    expect(lease.lease.addresses).toEqual(['10.0.2.2/24']);

    // late's namespace file vanishes while it is served: the periodic check stops serving it (and releases the
    // namespace, which our sockets would otherwise keep alive with its links).
    const before = fdCount(daemon.child.pid!);
    await run(['ip', 'netns', 'del', basename(late)]);
    await waitFor(async () => daemonLogLines(daemon!).some((line) => String(line['msg']).startsWith('attachment dropped: its namespace vanished')), { timeoutMs: 60_000, intervalMs: 250, what: 'the vanished namespace reported' });
    expect(fdCount(daemon.child.pid!)).toBe(before - 5);
    for (const name of ['late', 'ghost']) await p.podman(['rm', '-f', '-t', '0', name]);
  });
});
