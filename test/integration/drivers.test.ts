// Every KernelDriver operation against a fresh netns, checked from outside with `ip -j`, `bridge -j`, `nft` and /proc.
//
// The test process never leaves the host namespace: the driver is created with {netns}, so its netlink socket is born
// inside the target and the tun/sysctl/nft steps run in short synchronous setns windows (agent/apply/netns.ts).
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCountingDriver, type WriteMethod } from '../../agent/drivers/counting.js';
import type { KernelDriver } from '../../agent/drivers/kernel.js';
import { KernelError } from '../../agent/drivers/kernel-error.js';
import { createLibNft } from '../../agent/drivers/libnftables.js';
import { createNetlinkDriver } from '../../agent/drivers/netlink-driver.js';
import { createNft } from '../../agent/drivers/nft.js';
import { InputError } from '../../agent/plan/errors.js';
import { openNetnsScope } from '../../agent/apply/netns.js';
import { netnsAvailable, runOk, withNetns, type Netns } from '../helpers/netns.js';

const T = 120_000;

async function withDriver<R>(ns: Netns, fn: (d: KernelDriver) => Promise<R>): Promise<R> {
  const d = createNetlinkDriver({ netns: { netnsPath: ns.path } });
  try {
    return await fn(d);
  } finally {
    d.close();
  }
}

/** Runs fn with a fresh namespace and a driver bound to it; both are always cleaned up. */
function inFreshNetns<R>(fn: (ns: Netns, d: KernelDriver) => Promise<R>): Promise<R> {
  return withNetns('drv', (ns) => withDriver(ns, (d) => fn(ns, d)));
}

interface IpLink {
  ifindex: number;
  ifname: string;
  address?: string;
  mtu: number;
  flags: string[];
  master?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: Record<string, unknown>;
    info_slave_kind?: string;
    info_slave_data?: Record<string, unknown>;
  };
}

interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  type?: string;
  metric?: number;
}

async function ipJson<R>(ns: Netns, args: readonly string[]): Promise<R> {
  const r = await runOk(['ip', '-n', ns.name, '-j', ...args]);
  return JSON.parse(r.stdout === '' ? '[]' : r.stdout) as R;
}

async function link(ns: Netns, name: string): Promise<IpLink> {
  const [l] = await ipJson<IpLink[]>(ns, ['-d', 'link', 'show', 'dev', name]);
  if (l === undefined) throw new Error(`no link ${name} in ${ns.name}`);
  return l;
}

async function linkNames(ns: Netns): Promise<string[]> {
  return (await ipJson<IpLink[]>(ns, ['link', 'show'])).map((l) => l.ifname);
}

async function indexOf(d: KernelDriver, name: string): Promise<number> {
  const l = (await d.listLinks()).find((x) => x.name === name);
  if (l === undefined) throw new Error(`driver does not list ${name}`);
  return l.index;
}

async function addrs(ns: Netns, dev: string): Promise<string[]> {
  const [a] = await ipJson<IpAddr[]>(ns, ['addr', 'show', 'dev', dev]);
  return (a?.addr_info ?? []).map((x) => `${x.local}/${x.prefixlen}`).sort();
}

async function mainRoutes(ns: Netns, family: 4 | 6): Promise<IpRoute[]> {
  return ipJson<IpRoute[]>(ns, [`-${family}`, 'route', 'show', 'table', 'main']);
}

/** iproute2 prints uid/gid as a name when /etc/passwd or /etc/group has one. */
function idMatches(value: unknown, id: number, file: '/etc/passwd' | '/etc/group'): boolean {
  if (value === id || value === String(id)) return true;
  const names = readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .filter((f) => f[2] === String(id))
    .map((f) => f[0]);
  return typeof value === 'string' && names.includes(value);
}

function expectKernelError(err: unknown, code: string | null): KernelError {
  expect(err).toBeInstanceOf(KernelError);
  const k = err as KernelError;
  if (code !== null) expect(k.code).toBe(code);
  return k;
}

describe.skipIf(!netnsAvailable())('netlink driver on real namespaces', () => {
  it(
    'creates a bridge with a fixed MAC',
    () =>
      inFreshNetns(async (ns, d) => {
        await d.createBridge('k6t-eth0', '02:00:00:ab:cd:ef');
        const l = await link(ns, 'k6t-eth0');
        expect(l.linkinfo?.info_kind).toBe('bridge');
        expect(l.address).toBe('02:00:00:ab:cd:ef');
        const listed = (await d.listLinks()).find((x) => x.name === 'k6t-eth0');
        expect(listed).toMatchObject({ index: l.ifindex, kind: 'bridge', mac: '02:00:00:ab:cd:ef', up: false, masterIndex: null, learning: null, tun: null });
        const err: unknown = await d.createBridge('k6t-eth0').catch((e: unknown) => e);
        expect(expectKernelError(err, 'EEXIST').message).toBe('EEXIST (File exists)');
      }),
    T,
  );

  it(
    "a refused change carries the kernel's own words (extended ack), the text ip prints",
    () =>
      inFreshNetns(async (ns, d) => {
        await d.createBridge('br-a');
        await d.createBridge('br-b');
        const a = (await link(ns, 'br-a')).ifindex;
        const b = (await link(ns, 'br-b')).ifindex;
        const tooBig: unknown = await d.setLink(a, { mtu: 70_000 }).catch((e: unknown) => e);
        expect(expectKernelError(tooBig, 'EINVAL').message).toBe('EINVAL (Invalid argument): mtu greater than device maximum');
        const nested: unknown = await d.setLink(a, { master: b }).catch((e: unknown) => e);
        expect(expectKernelError(nested, null).message).toMatch(/: Can not enslave a bridge to a bridge$/);
        // The socket answers the next request normally after a refusal; names resolve by ioctl in the namespace.
        expect(await d.linkIndex('br-b')).toBe(b);
        expect(await d.linkIndex('no-such-link')).toBeNull();
        expect(await d.linkIndex('lo')).toBe(1);
      }),
    T,
  );

  it(
    'detects that this kernel has no dummy links (probe leaves nothing behind), and bridges are supported',
    () =>
      inFreshNetns(async (ns, d) => {
        const before = await linkNames(ns);
        const dummy = await d.supportsLinkKind('dummy');
        expect(typeof dummy).toBe('boolean');
        // The CI kernel has no CONFIG_DUMMY; if it had, `ip link add type dummy` would succeed too.
        const ipSays = await ns.exec(['ip', 'link', 'add', 'vnacheck0', 'type', 'dummy']);
        expect(dummy).toBe(ipSays.code === 0);
        expect(dummy).toBe(false);
        expect(await d.supportsLinkKind('dummy')).toBe(false);
        expect(await d.supportsLinkKind('bridge')).toBe(true);
        expect(await linkNames(ns)).toEqual(before);
        const err: unknown = await d.createDummy('eth0').catch((e: unknown) => e);
        expectKernelError(err, 'EOPNOTSUPP');
      }),
    T,
  );

  it(
    'creates a multi-queue tap owned by 107 with vnet_hdr, persistent, with the MTU',
    () =>
      inFreshNetns(async (ns, d) => {
        await d.createTap('tap0', { queues: 4, owner: { uid: 107, gid: 107 }, mtu: 1400 });
        const l = await link(ns, 'tap0');
        expect(l.mtu).toBe(1400);
        expect(l.linkinfo?.info_kind).toBe('tun');
        const info = l.linkinfo?.info_data ?? {};
        expect(info['type']).toBe('tap');
        expect(info['multi_queue']).toBe(true);
        expect(info['vnet_hdr']).toBe(true);
        expect(info['pi']).toBe(false);
        expect(info['persist']).toBe(true);
        expect(idMatches(info['user'], 107, '/etc/passwd')).toBe(true);
        expect(idMatches(info['group'], 107, '/etc/group')).toBe(true);
        const listed = (await d.listLinks()).find((x) => x.name === 'tap0');
        expect(listed?.kind).toBe('tun');
        expect(listed?.tun).toEqual({ owner: 107, group: 107, multiQueue: true, persist: true });

        // A second create of the same name fails (IFF_TUN_EXCL) instead of attaching to it.
        const err: unknown = await d.createTap('tap0', { queues: 4, owner: { uid: 107, gid: 107 } }).catch((e: unknown) => e);
        expectKernelError(err, 'EBUSY');
      }),
    T,
  );

  it(
    'creates a single-queue tap (one_queue semantics, not multi_queue) owned by root',
    () =>
      inFreshNetns(async (ns, d) => {
        await d.createTap('tap1', { queues: 1, owner: { uid: 0, gid: 0 } });
        const info = (await link(ns, 'tap1')).linkinfo?.info_data ?? {};
        expect(info['multi_queue']).toBe(false);
        expect(info['vnet_hdr']).toBe(true);
        expect(info['persist']).toBe(true);
        expect(idMatches(info['user'], 0, '/etc/passwd')).toBe(true);
        expect((await d.listLinks()).find((x) => x.name === 'tap1')?.tun).toMatchObject({ owner: 0, group: 0, multiQueue: false });
      }),
    T,
  );

  it(
    'renames, changes MAC and MTU, enslaves, turns learning off, releases and deletes',
    () =>
      inFreshNetns(async (ns, d) => {
        await d.createBridge('br0');
        await d.createTap('tap0', { queues: 1, owner: { uid: 107, gid: 107 } });
        const br = await indexOf(d, 'br0');
        const tap = await indexOf(d, 'tap0');

        await d.setLink(tap, { name: 'eth0-nic', mac: '02:11:22:33:44:55', mtu: 1300 });
        let l = await link(ns, 'eth0-nic');
        expect(l.ifindex).toBe(tap);
        expect(l.address).toBe('02:11:22:33:44:55');
        expect(l.mtu).toBe(1300);
        expect(await linkNames(ns)).not.toContain('tap0');

        await d.setLink(tap, { master: br, up: true });
        await d.setLink(br, { up: true });
        l = await link(ns, 'eth0-nic');
        expect(l.master).toBe('br0');
        expect(l.flags).toContain('UP');
        expect(l.linkinfo?.info_slave_kind).toBe('bridge');
        expect(l.linkinfo?.info_slave_data?.['learning']).toBe(true);
        expect((await d.listLinks()).find((x) => x.index === tap)).toMatchObject({ masterIndex: br, learning: true, up: true });

        await d.setBridgePortLearning(tap, false);
        expect((await link(ns, 'eth0-nic')).linkinfo?.info_slave_data?.['learning']).toBe(false);
        const bridgeView = JSON.parse((await ns.execOk(['bridge', '-d', '-j', 'link', 'show', 'dev', 'eth0-nic'])).stdout) as { learning?: boolean }[];
        expect(bridgeView[0]?.learning).toBe(false);
        expect((await d.listLinks()).find((x) => x.index === tap)?.learning).toBe(false);

        await d.setLink(tap, { up: false, master: null });
        l = await link(ns, 'eth0-nic');
        expect(l.master).toBeUndefined();
        expect(l.flags).not.toContain('UP');
        expect((await d.listLinks()).find((x) => x.index === tap)).toMatchObject({ masterIndex: null, learning: null, up: false });

        await d.deleteLink(tap);
        await d.deleteLink(br);
        expect(await linkNames(ns)).toEqual(['lo']);
        const err: unknown = await d.deleteLink(tap).catch((e: unknown) => e);
        expectKernelError(err, 'ENODEV');
      }),
    T,
  );

  it(
    'adds and deletes IPv4/IPv6 addresses and routes',
    () =>
      inFreshNetns(async (ns, d) => {
        await d.createBridge('k6t-eth0');
        const br = await indexOf(d, 'k6t-eth0');
        await d.setLink(br, { up: true });
        await d.addAddress(br, '10.0.2.1/24');
        await d.addAddress(br, 'fd10:0:2::1/120');
        expect((await addrs(ns, 'k6t-eth0')).filter((a) => !a.startsWith('fe80'))).toEqual(['10.0.2.1/24', 'fd10:0:2::1/120']);
        const listed = (await d.listAddresses()).filter((a) => a.index === br && a.scope === 'global');
        expect(listed.map((a) => [a.cidr, a.family]).sort()).toEqual([
          ['10.0.2.1/24', 4],
          ['fd10:0:2::1/120', 6],
        ]);

        await d.addRoute({ dst: '10.9.0.0/16', index: br, gw: '10.0.2.5', family: 4 });
        await d.addRoute({ dst: 'default', index: br, gw: '10.0.2.254', family: 4 });
        await d.addRoute({ dst: '192.168.7.0/24', index: br, family: 4 });
        await d.addRoute({ dst: 'fd11::/64', index: br, family: 6 });
        await d.addRoute({ dst: 'default', index: br, gw: 'fd10:0:2::fe', family: 6 });

        const v4 = await mainRoutes(ns, 4);
        expect(v4).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ dst: '10.9.0.0/16', gateway: '10.0.2.5', dev: 'k6t-eth0' }),
            expect.objectContaining({ dst: 'default', gateway: '10.0.2.254', dev: 'k6t-eth0' }),
            expect.objectContaining({ dst: '192.168.7.0/24', dev: 'k6t-eth0', scope: 'link' }),
          ]),
        );
        const v6 = await mainRoutes(ns, 6);
        expect(v6).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ dst: 'fd11::/64', dev: 'k6t-eth0' }),
            expect.objectContaining({ dst: 'default', gateway: 'fd10:0:2::fe', dev: 'k6t-eth0' }),
          ]),
        );

        const ours = (await d.listRoutes()).filter((r) => r.table === 254 && r.protocol === 3);
        expect(ours.map((r) => `${r.dst} ${r.gw ?? '-'}`).sort()).toEqual(
          ['10.9.0.0/16 10.0.2.5', 'default 10.0.2.254', '192.168.7.0/24 -', 'fd11::/64 -', 'default fd10:0:2::fe'].sort(),
        );
        for (const r of ours) await d.deleteRoute(r);
        expect((await mainRoutes(ns, 4)).map((r) => r.dst)).toEqual(['10.0.2.0/24']);
        expect((await mainRoutes(ns, 6)).map((r) => r.dst).filter((dst) => !dst.startsWith('fe80'))).toEqual(['fd10:0:2::/120']);

        await d.deleteAddress(br, '10.0.2.1/24');
        await d.deleteAddress(br, 'fd10:0:2::1/120');
        expect((await addrs(ns, 'k6t-eth0')).filter((a) => !a.startsWith('fe80'))).toEqual([]);
        const err: unknown = await d.deleteAddress(br, '10.0.2.1/24').catch((e: unknown) => e);
        expectKernelError(err, 'EADDRNOTAVAIL');
      }),
    T,
  );

  it(
    'reads and writes sysctls inside the namespace only',
    () =>
      inFreshNetns(async (ns, d) => {
        const hostForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
        expect(d.readSysctl('net.ipv4.ip_forward')).toBe('0');
        d.writeSysctl('net.ipv4.ip_forward', '1');
        expect(d.readSysctl('net.ipv4.ip_forward')).toBe('1');
        expect((await ns.execOk(['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('1');
        expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(hostForward);

        await d.createBridge('k6t-eth0');
        d.writeSysctl('net.ipv4.conf.k6t-eth0.route_localnet', '1');
        expect((await ns.execOk(['cat', '/proc/sys/net/ipv4/conf/k6t-eth0/route_localnet'])).stdout.trim()).toBe('1');
        expect(d.readSysctl('net.ipv4.conf.k6t-eth0.route_localnet')).toBe('1');

        expect(d.readSysctl('net.ipv4.no_such_knob')).toBeNull();
        let err: unknown;
        try {
          d.writeSysctl('net.ipv4.no_such_knob', '1');
        } catch (e) {
          err = e;
        }
        expectKernelError(err, 'ENOENT');
      }),
    T,
  );

  it(
    'applies an nft ruleset in one transaction and lists it; a bad ruleset changes nothing and reports nft’s error',
    () =>
      inFreshNetns(async (ns, d) => {
        const hostRuleset = (await runOk(['nft', 'list', 'ruleset'])).stdout;
        const text = [
          'table inet vna_test {',
          '  chain postrouting {',
          '    type nat hook postrouting priority srcnat; policy accept;',
          '    ip saddr 10.0.2.2 counter masquerade',
          '  }',
          '}',
          '',
        ].join('\n');
        await d.nftApply(text);
        const inside = (await ns.execOk(['nft', 'list', 'ruleset'])).stdout;
        expect(inside).toContain('table inet vna_test');
        expect(inside).toContain('ip saddr 10.0.2.2 counter packets 0 bytes 0 masquerade');
        expect(await d.nftList()).toBe(inside);

        // Second table is valid, third line is not: the whole transaction is refused.
        const err: unknown = await d.nftApply('table ip other {\n}\ntable inet vna_test {\n  chain x { bogus }\n}\n').catch((e: unknown) => e);
        const k = expectKernelError(err, null);
        expect(k.message).toMatch(/Error: /);
        expect(k.message).not.toContain('\n');
        expect((await ns.execOk(['nft', 'list', 'ruleset'])).stdout).toBe(inside);
        expect((await runOk(['nft', 'list', 'ruleset'])).stdout).toBe(hostRuleset);
      }),
    T,
  );

  it(
    'libnftables (the driver\'s nft) and the nft binary (its fallback) apply, list and refuse alike, in the namespace',
    () =>
      withNetns('nftlib', async (ns) => {
        const scope = openNetnsScope({ netnsPath: ns.path });
        try {
          const inNs = <X>(fn: () => X): X => scope.run(fn);
          const lib = createLibNft(inNs);
          expect(lib).not.toBeNull();
          const binary = createNft({ spawnIn: inNs });
          await lib!.apply('table ip vna_lib {\n  chain c {\n    type filter hook input priority 0; policy accept;\n    counter\n  }\n}\n');
          await binary.apply('table ip vna_bin {\n}\n');
          const listed = await lib!.list();
          expect(listed).toBe(await binary.list());
          expect(listed).toContain('table ip vna_lib');
          expect(listed).toContain('table ip vna_bin');
          expect(listed).toBe((await ns.execOk(['nft', 'list', 'ruleset'])).stdout);
          const bad = 'table ip other {\n}\ntable ip vna_lib {\n  chain x { bogus }\n}\n';
          const fromLib = expectKernelError(await lib!.apply(bad).catch((e: unknown) => e), null);
          const fromBinary = expectKernelError(await binary.apply(bad).catch((e: unknown) => e), null);
          // Word for word nft's first stderr line, file:line:column included.
          expect(fromBinary.message).toMatch(/^\/dev\/stdin:4:\d+-\d+: Error: syntax error/);
          expect(fromLib.message).toBe(fromBinary.message);
          expect(await lib!.list()).toBe(listed);
        } finally {
          scope.close();
        }
      }),
    T,
  );

  it(
    'counts every write (reads are free), reports each one, and counts failed writes too',
    () =>
      inFreshNetns(async (ns, inner) => {
        const seen: [number, WriteMethod][] = [];
        const d = createCountingDriver(inner, (n, m) => seen.push([n, m]));
        await d.listLinks();
        await d.listAddresses();
        await d.listRoutes();
        d.readSysctl('net.ipv4.ip_forward');
        await d.nftList();
        await d.supportsLinkKind('dummy');
        expect(d.writes).toBe(0);

        await d.createBridge('br0');
        const br = await indexOf(d, 'br0');
        await d.setLink(br, { up: true });
        await d.addAddress(br, '10.1.0.1/24');
        d.writeSysctl('net.ipv4.ip_forward', '1');
        await d.nftApply('table ip t {\n}\n');
        await expect(d.createDummy('eth0')).rejects.toBeInstanceOf(KernelError);
        expect(d.writes).toBe(6);
        expect(seen).toEqual([
          [1, 'createBridge'],
          [2, 'setLink'],
          [3, 'addAddress'],
          [4, 'writeSysctl'],
          [5, 'nftApply'],
          [6, 'createDummy'],
        ]);
        expect(await addrs(ns, 'br0')).toContain('10.1.0.1/24');
      }),
    T,
  );

  it('rejects a missing or bogus namespace with an InputError naming the flag', () => {
    const missing = `/var/run/netns/vna-missing-${process.pid}`;
    expect(() => createNetlinkDriver({ netns: { netnsPath: missing } })).toThrow(InputError);
    try {
      createNetlinkDriver({ netns: { netnsPath: missing } });
    } catch (e) {
      expect((e as InputError).field).toBe('--netns');
      expect((e as InputError).message).toBe(`no such network namespace ${missing}`);
    }
    try {
      openNetnsScope({ pid: 2 ** 22 + 12345 });
      expect.unreachable();
    } catch (e) {
      expect((e as InputError).field).toBe('--pid');
      expect((e as InputError).message).toMatch(/^no such process \d+ \(\/proc\/\d+\/ns\/net does not exist\)$/);
    }
    const dir = mkdtempSync(join(tmpdir(), 'vna-notns-'));
    try {
      const file = join(dir, 'plain');
      writeFileSync(file, '');
      // Checked when opened (nsfs, a network namespace, not the node's): docs/security.md, test/security/netns-check.test.ts.
      expect(() => openNetnsScope({ netnsPath: file })).toThrow(`${file} is not a network namespace (a regular file on filesystem`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
