// `serve` against real DHCP clients (busybox udhcpc, ISC dhclient) in fake guests on CNI-built pods: bridge, masquerade,
// two bridges in one pod, restart without link changes, invalid search domains, and the one-line start-up errors.
import { chmodSync, copyFileSync, cpSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { agent, attachGuest, dhclient, isServing, spawnServe, udhcpc, type ClientRun, type ServeProcess } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAvailable, runOk, type Netns } from '../helpers/netns.js';
import { BUNDLE } from '../helpers/agent-run.js';

const RESOLV_CONF = 'nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n';
const SEARCH = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

/** The search domains of a resolv.conf a client script wrote (udhcpc prints them fully qualified, with a final dot). */
function searchOf(resolvConf: string): string[] {
  const line = resolvConf.split('\n').find((entry) => entry.startsWith('search '));
  return (line ?? '').split(/\s+/).slice(1).map((domain) => domain.replace(/\.$/, ''));
}
/** The Multus network "blue" gets the pod interface pod<sha256("blue")[:11]> and the bridge k6t-<that without "pod">. */
const BLUE_IF = 'pod16477688c0e';
const BLUE_BRIDGE = 'k6t-16477688c0e';

function vmiYaml(binding: 'bridge' | 'masquerade', options: { blue?: boolean } = {}): string {
  const blueIface = options.blue ? '      - name: blue\n        bridge: {}\n' : '';
  const blueNet = options.blue ? '  - name: blue\n    multus:\n      networkName: blue-net\n' : '';
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: testvmi
  namespace: default
  uid: serve-${binding}-${process.pid}-${Math.random().toString(16).slice(2)}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        ${binding}: {}
${blueIface}  networks:
  - name: default
    pod: {}
${blueNet}`;
}

/** Lease times measured in this run, printed at the end (numbers for the report, never asserted). */
const timings: string[] = [];
function record(what: string, run: ClientRun): void {
  timings.push(`${what}: ${run.elapsedMs.toFixed(0)} ms`);
}

async function linkDump(pod: Netns): Promise<unknown> {
  const links = JSON.parse((await pod.execOk(['ip', '-d', '-j', 'link', 'show'])).stdout) as Record<string, unknown>[];
  // Counters and operational state can move (a tap's carrier follows whether a process holds its fd, a bridge port's
  // STP state and timers follow carrier); identity and configuration must not.
  const CARRIER_FLAGS = new Set(['NO-CARRIER', 'LOWER_UP']);
  return links.map(({ stats64: _s, operstate: _o, flags, linkinfo, ...rest }) => ({
    ...rest,
    flags: Array.isArray(flags) ? flags.filter((flag) => !CARRIER_FLAGS.has(String(flag))) : flags,
    linkinfo: JSON.stringify(linkinfo ?? null)
      .replace(/"(hello_timer|tcn_timer|topology_change_timer|gc_timer|forward_delay_timer|hold_timer|message_age_timer)":[\d.]+/g, '')
      .replace(/"state":"(forwarding|disabled|listening|learning|blocking)"/g, ''),
  }));
}

describe.skipIf(!netnsAvailable())('serve: DHCPv4 to real clients in fake guests', { timeout: 600_000 }, () => {
  let workDir: string;
  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'vna-serve-'));
  });
  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
    if (timings.length > 0) process.stdout.write(`lease times (spawn → script applied the lease):\n  ${timings.join('\n  ')}\n`);
  });

  interface Setup {
    readonly cni: CniPod;
    readonly dir: string;
    readonly stateDir: string;
    readonly setupStdout: string;
    serve(env?: Record<string, string>): Promise<ServeProcess>;
    /** A fresh subdirectory for one client's files. */
    clientDir(name: string): string;
  }

  /** A CNI pod (extra route 10.96.0.0/12 on eth0, MTU 1450), the VMI set up by the CLI; always cleaned up. */
  async function withSetup(
    binding: 'bridge' | 'masquerade',
    options: { podCidr: string; podCidr6?: string; blue?: boolean; resolvConf?: string },
    fn: (setup: Setup) => Promise<void>,
  ): Promise<void> {
    const cni = await makeCniPod({
      podCidr: options.podCidr,
      ...(options.podCidr6 !== undefined ? { podCidr6: options.podCidr6 } : {}),
      mtu: 1450,
      ...(options.blue ? { secondaries: [{ ifname: BLUE_IF, plugin: 'bridge' as const, subnet: '10.10.0.0/24', network: 'blue-net' }] } : {}),
    });
    const dir = mkdtempSync(join(workDir, `${binding}-`));
    const running: ServeProcess[] = [];
    try {
      const gateway = cni.attachments[0]?.gateways[0] ?? '';
      await cni.pod.execOk(['ip', 'route', 'add', '10.96.0.0/12', 'via', gateway, 'dev', 'eth0']);
      const vmi = join(dir, 'vmi.yaml');
      writeFileSync(vmi, vmiYaml(binding, { blue: options.blue ?? false }));
      const resolv = join(dir, 'resolv.conf');
      writeFileSync(resolv, options.resolvConf ?? RESOLV_CONF);
      const stateDir = join(dir, 'state');
      const setup = await agent(['setup', '--vmi', vmi, '--netns', cni.pod.path, '--state-dir', stateDir, '--resolv-conf', resolv, '--hostname', 'testvmi']);
      expect(setup.stderr).toBe('');
      expect(setup.code).toBe(0);
      let clients = 0;
      await fn({
        cni,
        dir,
        stateDir,
        setupStdout: setup.stdout,
        async serve(env = {}) {
          const serve = spawnServe(['--state-dir', stateDir, '--netns', cni.pod.path], env);
          running.push(serve);
          await serve.waitForLog(isServing, 'serving');
          return serve;
        },
        clientDir(name) {
          const path = join(dir, `${name}-${clients++}`);
          mkdirSync(path);
          return path;
        },
      });
    } finally {
      for (const serve of running) await serve.stop('SIGKILL');
      await cni.cleanup();
    }
  }

  /** A guest on `bridge`, given to fn, always deleted. */
  async function withGuest(pod: Netns, bridge: string, mac: string | undefined, fn: (guest: Netns) => Promise<void>, port = 'vguest'): Promise<void> {
    const guest = await attachGuest(pod, bridge, port, mac);
    try {
      await fn(guest);
    } finally {
      // The pod-side port first: a deleted netns takes its veth end with it only asynchronously.
      await pod.exec(['ip', 'link', 'del', port]);
      await deleteNetns(guest.name);
    }
  }

  it('bridge binding: udhcpc and dhclient (with the planned MAC) get the pod IP, routes, MTU and DNS as planned', async () => {
    await withSetup('bridge', { podCidr: '10.244.21.0/24' }, async (setup) => {
      const pod = setup.cni.attachments[0]!;
      const gateway = pod.gateways[0]!;
      const serve = await setup.serve();
      for (const client of [udhcpc, dhclient]) {
        await withGuest(setup.cni.pod, 'k6t-eth0', pod.mac, async (guest) => {
          const run = await client(guest, setup.clientDir(client.name));
          record(`bridge ${client.name}`, run);
          expect(run.lease.addresses).toEqual([pod.addresses[0]]);
          expect(run.lease.mtu).toBe(1450);
          expect(run.lease.routes).toEqual([`10.244.21.0/24 dev eth0`, `10.96.0.0/12 via ${gateway}`, `default via ${gateway}`].sort());
          expect(searchOf(run.lease.resolvConf)).toEqual(SEARCH);
          expect(run.lease.resolvConf).toContain('nameserver 10.96.0.10\n');
          // The client really uses the lease: the node (the CNI bridge) answers through the pod bridge.
          const ping = await guest.exec(['busybox', 'ping', '-c', '1', '-W', '5', gateway]);
          expect(ping.stdout).toContain('1 packets received');
        });
      }
      // The exchange log: one line per exchange with type, MAC, address, interface.
      const acks = serve.logs.filter((line) => line['reply'] === 'DHCPACK');
      expect(acks.length).toBeGreaterThanOrEqual(2);
      expect(acks[0]).toMatchObject({ level: 'info', component: 'virt-net-agent', subcomponent: 'dhcpv4', interface: 'k6t-eth0', msgType: 'DHCPREQUEST', mac: pod.mac, address: pod.addresses[0]!.split('/')[0], network: 'default' });
      expect(await serve.stop()).toEqual({ code: 0, signal: null });
    });
  });

  it('bridge binding: a guest with another MAC gets nothing (only the planned client is answered)', async () => {
    await withSetup('bridge', { podCidr: '10.244.22.0/24' }, async (setup) => {
      const serve = await setup.serve({ VIRT_NET_AGENT_LOG_LEVEL: 'debug' });
      await withGuest(setup.cni.pod, 'k6t-eth0', '02:aa:bb:cc:dd:ee', async (guest) => {
        const dir = setup.clientDir('stranger');
        const run = udhcpc(guest, dir, 60_000);
        await serve.waitForLog((line) => line['msg'] === 'dhcpv4 request ignored' && line['mac'] === '02:aa:bb:cc:dd:ee', 'stranger ignored');
        // udhcpc -n gives up after its retries; it must not have been offered anything.
        await expect(run).rejects.toThrow(/exited without a lease/);
      });
      expect(serve.logs.filter((line) => line['reply'] !== undefined)).toEqual([]);
    });
  });

  it('masquerade: udhcpc and dhclient get 10.0.2.2/24, default route via 10.0.2.1, MTU and DNS', async () => {
    await withSetup('masquerade', { podCidr: '10.244.23.0/24' }, async (setup) => {
      const serve = await setup.serve();
      // The socket got the 2 MiB receive buffer (the kernel caps the request at rmem_max, then doubles it).
      const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
      const listening = serve.logs.find((line) => line['msg'] === 'dhcpv4 server listening');
      expect(listening?.['receiveBufferBytes']).toBe(2 * Math.min(2 * 1024 * 1024, rmemMax));
      // serve re-executed itself (same PID) with the small young generation and no V8 helper threads.
      expect(readFileSync(`/proc/${serve.pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['--max-semi-space-size=1', '--single-threaded']));
      expect(serve.logs.find((line) => line['msg'] === 'serving')?.['nodeFlags']).toEqual(['--max-semi-space-size=1', '--single-threaded']);
      for (const client of [udhcpc, dhclient]) {
        // The guest has the MAC the domain gets (the pod NIC's): the bridge pins 10.0.2.2 to it.
        await withGuest(setup.cni.pod, 'k6t-eth0', setup.cni.attachments[0]!.mac, async (guest) => {
          const run = await client(guest, setup.clientDir(client.name));
          record(`masquerade ${client.name}`, run);
          expect(run.lease.addresses).toEqual(['10.0.2.2/24']);
          expect(run.lease.mtu).toBe(1450);
          expect(run.lease.routes).toEqual(['10.0.2.0/24 dev eth0', 'default via 10.0.2.1']);
          expect(searchOf(run.lease.resolvConf)).toEqual(SEARCH);
          expect(run.lease.resolvConf).toContain('nameserver 10.96.0.10\n');
          const ping = await guest.exec(['busybox', 'ping', '-c', '1', '-W', '5', setup.cni.attachments[0]!.gateways[0]!]);
          expect(ping.stdout).toContain('1 packets received');
        });
      }
    });
  });

  it('two bridge networks in one pod: each guest is served only on its own bridge, with its own lease', async () => {
    await withSetup('bridge', { podCidr: '10.244.24.0/24', blue: true }, async (setup) => {
      const [primary, blue] = setup.cni.attachments;
      const serve = await setup.serve();
      expect((await serve.waitForLog(isServing, 'serving'))['services']).toEqual(['dhcpv4 k6t-eth0', `dhcpv4 ${BLUE_BRIDGE}`]);
      await withGuest(setup.cni.pod, 'k6t-eth0', primary!.mac, async (guestA) => {
        await withGuest(setup.cni.pod, BLUE_BRIDGE, blue!.mac, async (guestB) => {
          const [a, b] = await Promise.all([udhcpc(guestA, setup.clientDir('a')), udhcpc(guestB, setup.clientDir('b'))]);
          record('two bridges udhcpc (parallel) primary', a);
          record('two bridges udhcpc (parallel) blue', b);
          expect(a.lease.addresses).toEqual([primary!.addresses[0]]);
          expect(b.lease.addresses).toEqual([blue!.addresses[0]]);
          expect(b.lease.routes).toEqual(['10.10.0.0/24 dev eth0']); // the secondary has no gateway
          expect(a.lease.env['serverid']).not.toBe(b.lease.env['serverid']);
        }, 'vguestb');
      });
      // Each server answered only its own client's MAC, on its own bridge.
      const replies = serve.logs.filter((line) => line['reply'] !== undefined);
      expect(replies.length).toBeGreaterThanOrEqual(4);
      for (const line of replies) {
        expect(line['mac']).toBe(line['interface'] === 'k6t-eth0' ? primary!.mac : blue!.mac);
      }
      // A guest with the blue MAC plugged into the primary bridge gets nothing: the blue server never sees it.
      await withGuest(setup.cni.pod, 'k6t-eth0', blue!.mac, async (guest) => {
        await expect(udhcpc(guest, setup.clientDir('crossed'))).rejects.toThrow(/exited without a lease/);
      });
    });
  });

  /**
   * The image's layout (Dockerfile) in the setup's folder: the bundle and its chunks, koffi in node_modules, and node
   * with the file capability NET_BIND_SERVICE; returns the command that starts it inside the pod as uid/gid 107 with
   * no other capability (setpriv, as the launcher container runs).
   */
  async function asTheImageRunsIt(setup: Setup): Promise<string[]> {
    const image = join(setup.dir, 'image');
    mkdirSync(join(image, 'dist'), { recursive: true });
    cpSync(BUNDLE, join(image, 'dist', 'virt-net-agent.mjs'));
    cpSync(join(dirname(BUNDLE), 'chunks'), join(image, 'dist', 'chunks'), { recursive: true });
    for (const module of ['koffi', '@koromix']) cpSync(join('node_modules', module), join(image, 'node_modules', module), { recursive: true });
    const node = join(image, 'node');
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
    await runOk(['setcap', 'cap_net_bind_service=+ep', node]);
    for (const dir of [workDir, setup.dir]) chmodSync(dir, 0o755);
    return ['ip', 'netns', 'exec', setup.cni.pod.name, 'setpriv', '--reuid=107', '--regid=107', '--clear-groups', '--inh-caps=-all', node, join(image, 'dist', 'virt-net-agent.mjs')];
  }

  it('as the image runs it: the bundle as uid 107 with only NET_BIND_SERVICE (file capability on node), in the pod; udhcpc leases', async () => {
    await withSetup('masquerade', { podCidr: '10.244.28.0/24' }, async (setup) => {
      // setup (root) keeps the VMI's state folder and its record root's; the launcher's user, 107, gets a read-only
      // copy: folder root 0755, state.json root 0600, serve.json root 0644 (docs/security.md).
      const [folder = ''] = readdirSync(setup.stateDir);
      const folderStat = statSync(join(setup.stateDir, folder));
      expect([folderStat.uid, folderStat.gid, folderStat.mode & 0o777]).toEqual([0, 0, 0o755]);
      const stateStat = statSync(join(setup.stateDir, folder, 'state.json'));
      expect([stateStat.uid, stateStat.mode & 0o777]).toEqual([0, 0o600]);
      const copyStat = statSync(join(setup.stateDir, folder, 'serve.json'));
      expect([copyStat.uid, copyStat.mode & 0o777]).toEqual([0, 0o644]);
      expect(statSync(setup.stateDir).mode & 0o777).toBe(0o755);
      const serve = spawnServe(['--state-dir', setup.stateDir], {}, { command: await asTheImageRunsIt(setup) });
      let stopped = false;
      try {
        await serve.waitForLog(isServing, 'serving');
        const status = readFileSync(`/proc/${serve.pid}/status`, 'utf8');
        expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe('107');
        expect(/^CapEff:\s+(\w+)/m.exec(status)?.[1]).toBe('0000000000000400'); // CAP_NET_BIND_SERVICE only
        await withGuest(setup.cni.pod, 'k6t-eth0', undefined, async (guest) => {
          const run = await udhcpc(guest, setup.clientDir('image'));
          expect(run.lease.addresses).toEqual(['10.0.2.2/24']);
        });
        expect(serve.logs.some((line) => line['reply'] === 'DHCPACK')).toBe(true);
        stopped = true;
        expect(await serve.stop()).toEqual({ code: 0, signal: null });
      } finally {
        if (!stopped) await serve.stop('SIGKILL');
      }
    });
  });

  it('as the image runs it, dual stack: DHCPv4 and DHCPv6 serve; router advertisements (CAP_NET_RAW) are skipped with a warning', async () => {
    await withSetup('masquerade', { podCidr: '10.244.29.0/24', podCidr6: 'fd00:10:244:29::/64' }, async (setup) => {
      const serve = spawnServe(['--state-dir', setup.stateDir], {}, { command: await asTheImageRunsIt(setup) });
      try {
        await serve.waitForLog(isServing, 'serving');
        expect(serve.logs.some((line) => line['msg'] === 'dhcpv4 server listening')).toBe(true);
        expect(serve.logs.some((line) => line['msg'] === 'dhcpv6 server listening')).toBe(true);
        const skipped = serve.logs.find((line) => String(line['msg']).startsWith('router advertisements not sent'));
        expect(skipped).toMatchObject({ level: 'warn', network: 'default' });
        expect(String(skipped?.['err'])).toMatch(/EPERM|EACCES/);
      } finally {
        await serve.stop();
      }
    });
  });

  it('restart: a killed serve started again serves again from the state dir without any link change', async () => {
    await withSetup('masquerade', { podCidr: '10.244.25.0/24' }, async (setup) => {
      const before = await linkDump(setup.cni.pod);
      const first = await setup.serve();
      expect(await first.stop('SIGKILL')).toMatchObject({ signal: 'SIGKILL' });
      const second = await setup.serve();
      expect(await linkDump(setup.cni.pod)).toEqual(before);
      await withGuest(setup.cni.pod, 'k6t-eth0', undefined, async (guest) => {
        const run = await udhcpc(guest, setup.clientDir('after-restart'));
        expect(run.lease.addresses).toEqual(['10.0.2.2/24']);
      });
      expect(await second.stop('SIGINT')).toEqual({ code: 0, signal: null });
      expect(second.logs.map((line) => line['msg'])).toEqual(expect.arrayContaining(['serving', 'stopping', 'dhcpv4 server stopped', 'stopped']));
    });
  });

  it('invalid search domains in the pod resolv.conf are dropped with a warning; the valid ones are served (KubeVirt #4541)', async () => {
    const resolvConf = 'nameserver 10.96.0.10\nsearch default.svc.cluster.local bad..domain -dash.example.com cluster.local\n';
    await withSetup('masquerade', { podCidr: '10.244.26.0/24', resolvConf }, async (setup) => {
      const warnings = (JSON.parse(setup.setupStdout) as { warnings: string[] }).warnings;
      expect(warnings.some((w) => w.includes('bad..domain'))).toBe(true);
      expect(warnings.some((w) => w.includes('-dash.example.com'))).toBe(true);
      await setup.serve();
      await withGuest(setup.cni.pod, 'k6t-eth0', undefined, async (guest) => {
        const run = await udhcpc(guest, setup.clientDir('search'));
        expect(searchOf(run.lease.resolvConf)).toEqual(['default.svc.cluster.local', 'cluster.local']);
      });
    });
  });

  it('start-up errors are one line with a non-zero exit: no state dir, no state, a missing bridge', async () => {
    const missing = await agent(['serve', '--state-dir', join(workDir, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`virt-net-agent: --state-dir: no such directory ${join(workDir, 'nope')} (run setup first)\n`);
    const empty = mkdtempSync(join(workDir, 'empty-'));
    const none = await agent(['serve', '--state-dir', empty]);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(`virt-net-agent: --state-dir: no state in ${empty} (run setup first)\n`);

    // State for a bridge that is not there (setup never ran in this namespace): exit 3, nothing left running.
    const stateDir = mkdtempSync(join(workDir, 'ghost-'));
    const plan = { interface: 'k6t-ghost', serverIdentifier: '10.0.2.1', clientMac: null, yiaddr: '10.0.2.2', prefixLength: 24, leaseSeconds: 3600, options: {} };
    const network = { binding: 'masquerade', podInterface: 'eth0', podInterfaceIndex: 2, podIdentity: null, renamedTo: null, created: [], bridge: 'k6t-ghost', dhcp: plan, dhcpv6: null };
    writeFileSync(join(stateDir, 'state.json'), JSON.stringify({ version: 1, vmi: { name: 'v', namespace: 'd', uid: 'u' }, networks: { default: network }, sysctlsBefore: {}, nft: null }));
    // A state with networks but no DHCP planned (e.g. only SR-IOV): nothing to serve.
    const idle = mkdtempSync(join(workDir, 'idle-'));
    writeFileSync(join(idle, 'state.json'), JSON.stringify({ version: 1, vmi: { name: 'v', namespace: 'd', uid: 'u' }, networks: { default: { ...network, dhcp: null } }, sysctlsBefore: {}, nft: null }));
    const nothing = await agent(['serve', '--state-dir', idle]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toBe(`virt-net-agent: --state-dir: nothing to serve in ${idle}: no network has a planned DHCP server\n`);

    const pod = await makeCniPod({ podCidr: '10.244.27.0/24' });
    try {
      const ghost = await agent(['serve', '--state-dir', stateDir, '--netns', pod.pod.path]);
      expect(ghost.code).toBe(3);
      expect(ghost.stderr.trim().split('\n')).toHaveLength(1);
      expect(ghost.stderr).toMatch(/^virt-net-agent: networks\.default\.dhcp: cannot start dhcpv4 on k6t-ghost: .*\(run setup first\)\n$/);
    } finally {
      await pod.cleanup();
    }
  });
});
