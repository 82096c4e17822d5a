// Discovery of a CNI-built pod (bridge + host-local, dual stack, a macvlan and a bridge secondary) matches `ip -j`.
//
// Design: the vitest process stays in the host namespace throughout.
//   * In-process: discoverPodState runs over createNetlinkDriver({netns}), whose socket is opened inside the pod netns
//     in a synchronous setns window (agent/apply/netns.ts) — the worker thread never stays in the pod.
//   * The real CLI path (runDiscover → enterNetns → setns for the whole process) runs in a child process
//     (`node --import tsx`), so the switch of the main thread happens there, not in the test worker.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverPodState, parseDownwardApiJson, unquoteGo } from '../../agent/apply/discover.js';
import { createNetlinkDriver } from '../../agent/drivers/netlink-driver.js';
import { parsePodState } from '../../agent/plan/pod-state-parse.js';
import type { PodState } from '../../agent/plan/pod-state.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { netnsAvailable, runOk, waitFor, type ExecResult } from '../helpers/netns.js';

const T = 180_000;
const REPO = fileURLToPath(new URL('../../', import.meta.url));

const NETWORK_STATUS = [
  { name: 'kindnet', interface: 'eth0', ips: ['10.244.7.2', 'fd00:10:244:7::2'], mac: 'AE:B0:F7:D9:38:E9', default: true, dns: {} },
  { name: 'default/blue', interface: 'pod16477688c0e', ips: ['10.10.0.2'], mac: 'ea:2e:0f:7d:cd:e4', dns: {} },
];
const NETWORK_INFO = { interfaces: [{ network: 'sriov', deviceInfo: { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:65:00.2' } } }] };

/** Go's strconv.Quote for the test data (ASCII JSON): escapes \ and " and newlines. */
function goQuote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

interface IpAddrLink {
  ifindex: number;
  ifname: string;
  address?: string;
  mtu: number;
  flags: string[];
  master?: string;
  addr_info: { family: 'inet' | 'inet6'; local: string; prefixlen: number }[];
}

interface IpRoute {
  dst: string;
  dev?: string;
  gateway?: string;
  type?: string;
}

/** What `ip -j` says, in PodState terms (kind aside): links with addresses, and main-table unicast routes. */
async function ipView(netnsName: string): Promise<{ interfaces: object[]; routes: object[] }> {
  const links = JSON.parse((await runOk(['ip', '-n', netnsName, '-j', 'addr', 'show'])).stdout) as IpAddrLink[];
  const interfaces = links
    .sort((a, b) => a.ifindex - b.ifindex)
    .map((l) => ({
      name: l.ifname,
      index: l.ifindex,
      mac: l.address ?? '',
      mtu: l.mtu,
      up: l.flags.includes('UP'),
      ...(l.master !== undefined ? { master: l.master } : {}),
      ipv4: l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
      ipv6: l.addr_info.filter((a) => a.family === 'inet6').map((a) => `${a.local}/${a.prefixlen}`),
    }));
  const routes: object[] = [];
  for (const family of ['-4', '-6']) {
    const rs = JSON.parse((await runOk(['ip', '-n', netnsName, family, '-j', 'route', 'show', 'table', 'main'])).stdout) as IpRoute[];
    for (const r of rs) {
      if (r.type !== undefined || r.dev === undefined) continue; // non-unicast (unreachable, blackhole …)
      const dst = r.dst === 'default' || r.dst.includes('/') ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`;
      routes.push({ dst, dev: r.dev, ...(r.gateway !== undefined ? { gw: r.gateway } : {}) });
    }
  }
  return { interfaces, routes };
}

function comparable(state: PodState): { interfaces: object[]; routes: object[] } {
  return {
    interfaces: state.interfaces.map(({ kind: _kind, ...rest }) => rest),
    routes: [...state.routes],
  };
}

function sortRoutes(routes: object[]): object[] {
  return [...routes].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Runs agent/cli/cmd-discover.ts's runDiscover in a child node (tsx), the way cli.ts will: errors → one line + exit code. */
function runDiscoverChild(args: readonly string[]): Promise<ExecResult> {
  const script = [
    "const { runDiscover } = await import('./agent/cli/cmd-discover.ts');",
    'try { process.exitCode = await runDiscover(process.argv.slice(1)); }',
    "catch (e) { process.stderr.write('virt-net-agent: ' + (typeof e.oneLine === 'function' ? e.oneLine() : String(e.stack)) + '\\n');",
    '  process.exitCode = typeof e.exitCode === "number" ? e.exitCode : 1; }',
  ].join('\n');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', ...args], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? 137 });
    });
  });
}

describe('downward-API file formats', () => {
  it('reads plain JSON and the key="Go-quoted" annotations format', () => {
    const json = JSON.stringify(NETWORK_STATUS, null, 2);
    expect(parseDownwardApiJson(json, 'k8s.v1.cni.cncf.io/network-status', 'f')).toEqual(NETWORK_STATUS);
    const annotations = [`k8s.v1.cni.cncf.io/network-status=${goQuote(json)}`, 'kubevirt.io/domain="vmi1"', ''].join('\n');
    expect(parseDownwardApiJson(annotations, 'k8s.v1.cni.cncf.io/network-status', 'f')).toEqual(NETWORK_STATUS);
    expect(parseDownwardApiJson('kubevirt.io/domain="vmi1"\n', 'k8s.v1.cni.cncf.io/network-status', 'f')).toBeUndefined();
    expect(parseDownwardApiJson('', 'k8s.v1.cni.cncf.io/network-status', 'f')).toBeUndefined();
    expect(unquoteGo('"a\\tb\\x41\\u00e9\\U0001F600\\\\\\"\\101"')).toBe('a\tbAé😀\\"A');
    expect(unquoteGo('"\\xc3\\xa9"')).toBe('é');
    expect(() => parseDownwardApiJson('[oops', 'k', '/etc/podinfo/network-status')).toThrow(/not valid JSON/);
  });
});

describe.skipIf(!netnsAvailable())('discover on a CNI-built pod', () => {
  let pod: CniPod;
  let dir: string;
  let files: { resolvConf: string; status: string; info: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-discover-'));
    files = { resolvConf: join(dir, 'resolv.conf'), status: join(dir, 'network-status'), info: join(dir, 'network-info') };
    writeFileSync(files.resolvConf, 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
    // The whole-annotations downward-API format for one file, plain JSON for the other.
    writeFileSync(files.status, `k8s.v1.cni.cncf.io/network-status=${goQuote(JSON.stringify(NETWORK_STATUS, null, 2))}\nkubevirt.io/domain="vmi1"\n`);
    writeFileSync(files.info, JSON.stringify(NETWORK_INFO));
    pod = await makeCniPod({
      podCidr: '10.244.7.0/24',
      podCidr6: 'fd00:10:244:7::/64',
      mtu: 1480,
      secondaries: [
        { ifname: 'pod16477688c0e', plugin: 'macvlan', subnet: '10.10.0.0/24', network: 'blue' },
        { ifname: 'podb1f51a511f1', plugin: 'bridge', subnet: '10.20.0.0/24', network: 'red' },
      ],
    });
  }, T);

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await pod?.cleanup();
  }, T);

  async function discoverInProcess(): Promise<PodState> {
    const driver = createNetlinkDriver({ netns: { netnsPath: pod.pod.path } });
    try {
      return await discoverPodState(driver, {
        hostname: 'virt-launcher-vmi1-abcde',
        resolvConfPath: files.resolvConf,
        networkStatusPath: files.status,
        networkInfoPath: files.info,
      });
    } finally {
      driver.close();
    }
  }

  it(
    'matches ip -j link/addr/route of the pod (in-process, scoped netns driver)',
    async () => {
      let state: PodState | undefined;
      let ip: { interfaces: object[]; routes: object[] } | undefined;
      // Poll until two consecutive views agree (IPv6 link-local addresses appear as links come up).
      await waitFor(
        async () => {
          state = await discoverInProcess();
          ip = await ipView(pod.pod.name);
          const ours = comparable(state);
          return JSON.stringify(ours.interfaces) === JSON.stringify(ip.interfaces) && JSON.stringify(sortRoutes(ours.routes)) === JSON.stringify(sortRoutes(ip.routes));
        },
        { timeoutMs: 60_000, intervalMs: 500, what: 'discovery to match ip -j' },
      ).catch(() => undefined);
      expect(state).toBeDefined();
      const ours = comparable(state!);
      expect(ours.interfaces).toEqual(ip!.interfaces);
      expect(sortRoutes(ours.routes)).toEqual(sortRoutes(ip!.routes));

      const s = state!;
      expect(s.interfaces.map((i) => [i.name, i.kind])).toEqual([
        ['lo', 'device'],
        ['eth0', 'veth'],
        ['pod16477688c0e', 'macvlan'],
        ['podb1f51a511f1', 'veth'],
      ]);
      const eth0 = s.interfaces.find((i) => i.name === 'eth0')!;
      const primary = pod.attachments[0]!;
      expect(eth0.mac).toBe(primary.mac);
      expect(eth0.mtu).toBe(1480);
      expect(eth0.ipv4).toEqual(['10.244.7.2/24']);
      expect(eth0.ipv6).toContain('fd00:10:244:7::2/64');
      expect(eth0.ipv6.some((a) => a.startsWith('fe80::'))).toBe(true);
      expect(s.interfaces.find((i) => i.name === 'lo')).toMatchObject({ ipv4: ['127.0.0.1/8'], ipv6: ['::1/128'], up: true });
      expect(s.routes).toEqual(
        expect.arrayContaining([
          { dst: 'default', dev: 'eth0', gw: '10.244.7.1' },
          { dst: 'default', dev: 'eth0', gw: 'fd00:10:244:7::1' },
          { dst: '10.244.7.0/24', dev: 'eth0' },
          { dst: '10.10.0.0/24', dev: 'pod16477688c0e' },
          { dst: '10.20.0.0/24', dev: 'podb1f51a511f1' },
        ]),
      );
      expect(s.hostname).toBe('virt-launcher-vmi1-abcde');
      expect(s.resolvConf).toBe(readFileSync(files.resolvConf, 'utf8'));
      expect(s.networkStatus).toEqual([
        { ...NETWORK_STATUS[0], mac: 'ae:b0:f7:d9:38:e9' },
        NETWORK_STATUS[1],
      ]);
      expect(s.networkInfo).toEqual(NETWORK_INFO);
      // What discover prints is exactly what `plan --pod` accepts.
      expect(parsePodState(JSON.parse(JSON.stringify(s)))).toEqual(s);
    },
    T,
  );

  it(
    'the discover command enters the netns (--netns) in a child process and prints the same state',
    async () => {
      const args = ['--hostname', 'virt-launcher-vmi1-abcde', '--resolv-conf', files.resolvConf, '--network-status', files.status, '--network-info', files.info];
      const r = await runDiscoverChild(['--netns', pod.pod.path, ...args]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const printed = JSON.parse(r.stdout) as PodState;
      expect(printed).toEqual(await discoverInProcess());
    },
    T,
  );

  it(
    'the discover command finds the netns and the pod files from --pid',
    async () => {
      // A process living in the pod netns (as the virt-launcher would); `ip netns exec` execs sleep in place.
      const sleeper = spawn('ip', ['netns', 'exec', pod.pod.name, 'sleep', '600'], { stdio: 'ignore' });
      try {
        const pid = sleeper.pid!;
        await waitFor(async () => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'), {
          timeoutMs: 60_000,
          intervalMs: 100,
          what: 'the sleeper to exec in the pod netns',
        });
        const r = await runDiscoverChild(['--pid', String(pid), '--hostname', 'h1', '--network-status', files.status]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        const printed = JSON.parse(r.stdout) as PodState;
        expect(comparable(printed).interfaces).toEqual((await ipView(pod.pod.name)).interfaces);
        // resolv.conf and network-info come through /proc/PID/root (same filesystem here).
        expect(printed.resolvConf).toBe(existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '');
        expect(printed.networkStatus).toHaveLength(2);
      } finally {
        sleeper.kill('SIGKILL');
      }
    },
    T,
  );

  it(
    'a missing namespace is a clear usage error (exit 2) and prints nothing on stdout',
    async () => {
      const missing = `/var/run/netns/vna-missing-${process.pid}`;
      const r = await runDiscoverChild(['--netns', missing]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`virt-net-agent: --netns: no such network namespace ${missing}\n`);
      const both = await runDiscoverChild(['--netns', pod.pod.path, '--pid', '1']);
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(/either --netns or --pid/);
    },
    T,
  );
});
