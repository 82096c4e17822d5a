// Spoof protection on real bridges: a fake guest in place of the tap forges its MAC and IPs on CNI-built pods (masquerade
// dual stack, bridge binding). Forged frames are dropped and counted by the guard table; the honest guest still leases
// over DHCP and reaches the node; re-runs converge with zero writes; turning protection off and teardown leave nothing.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SPOOF_PROTECTION_ANNOTATION } from '../../agent/plan/spoof-guard.js';
import { agent, dumpNetns, setupSummary } from '../helpers/agent-run.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { attachGuest, isServing, spawnServe, udhcpc, type ServeProcess } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAvailable, type Netns } from '../helpers/netns.js';
import { probe, probeUntil, startServer } from '../helpers/tcp.js';

const GUEST_MAC = '02:00:00:5a:0f:01';
const FORGED_MAC = '02:00:00:5a:0f:99';
/** A forged connection attempt only has to fail; the guard drops its first frame. */
const FORGED_TIMEOUT_MS = 4_000;
/** How a forged attempt fails: the SYN is dropped (TIMEOUT), or already its ARP/ND was (EHOSTUNREACH after 3 s). */
const BLOCKED = ['TIMEOUT', 'EHOSTUNREACH'];

function vmiYaml(binding: 'masquerade' | 'bridge', annotation: string | null, mac: string | null): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: guarded
  namespace: default
  uid: spoof-${binding}-${process.pid}
${annotation === null ? '' : `  annotations:\n    ${SPOOF_PROTECTION_ANNOTATION}: "${annotation}"\n`}spec:
  domain:
    devices:
      interfaces:
      - name: default
        ${binding}: {}
${mac === null ? '' : `        macAddress: "${mac}"\n`}  networks:
  - name: default
    pod: {}
status:
  migrationTransport: Unix
`;
}

/** Packets dropped so far by each guard rule, by the rule's comment ("spoof default: source MAC" …). */
async function dropCounts(pod: Netns): Promise<Record<string, number>> {
  const listing = JSON.parse((await pod.execOk(['nft', '-j', 'list', 'table', 'bridge', 'virt_net_agent'])).stdout) as {
    nftables: { rule?: { comment?: string; expr: Record<string, { packets?: number } | string>[] } }[];
  };
  const counts: Record<string, number> = {};
  for (const item of listing.nftables) {
    if (!item.rule?.comment) continue;
    // The rule's own counter; `{"counter": "drops"}` is its reference to the table's named counter.
    const counter = item.rule.expr.map((expr) => expr['counter']).find((c) => typeof c === 'object');
    counts[item.rule.comment] = counter?.packets ?? 0;
  }
  return counts;
}

function grew(before: Record<string, number>, after: Record<string, number>, ...comments: string[]): number {
  return comments.reduce((sum, comment) => sum + (after[comment] ?? 0) - (before[comment] ?? 0), 0);
}

/** Replaces the agent's tap by a veth whose other end is the fake guest's eth0 (same name, so the guard applies). */
async function guestOnTap(cni: CniPod, mac: string): Promise<Netns> {
  await cni.pod.execOk(['ip', 'link', 'del', 'tap0']);
  return attachGuest(cni.pod, 'k6t-eth0', 'tap0', mac);
}

describe.skipIf(!netnsAvailable())('spoof protection: masquerade (dual stack)', { timeout: 900_000 }, () => {
  let cni: CniPod;
  let guest: Netns | undefined;
  let serve: ServeProcess | undefined;
  let server: ChildProcessWithoutNullStreams | undefined;
  let dir: string;
  let before: unknown;
  let rerunWrites = -1;
  const stateDir = (): string => join(dir, 'state');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-spoof-masq-'));
    cni = await makeCniPod({ podCidr: '10.244.43.0/24', podCidr6: 'fd00:10:244:43::/64' });
    before = await dumpNetns(cni.pod);
    writeFileSync(join(dir, 'vmi.yaml'), vmiYaml('masquerade', null, GUEST_MAC));
    const args = ['setup', '--vmi', join(dir, 'vmi.yaml'), '--netns', cni.pod.path, '--state-dir', stateDir(), '--spoof-protection'];
    setupSummary(await agent(args));
    rerunWrites = setupSummary(await agent(args)).writes;
    guest = await guestOnTap(cni, GUEST_MAC);
    serve = spawnServe(['--state-dir', stateDir(), '--netns', cni.pod.path]);
    await serve.waitForLog(isServing, 'serving');
    server = await startServer(cni.node, 'node', [8080]);
  }, 600_000);

  afterAll(async () => {
    server?.kill('SIGKILL');
    await serve?.stop();
    if (guest) await deleteNetns(guest.name);
    await cni?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('a second setup with protection on makes zero kernel writes', () => {
    expect(rerunWrites).toBe(0);
  });

  it('the honest guest leases 10.0.2.2 over DHCP (from 0.0.0.0) and reaches the node over IPv4 and IPv6', async () => {
    const clientDir = join(dir, 'udhcpc');
    mkdirSync(clientDir);
    const run = await udhcpc(guest!, clientDir, 120_000);
    expect(run.lease.addresses).toEqual(['10.0.2.2/24']);
    await guest!.execOk(['ip', 'addr', 'add', 'fd10:0:2::2/120', 'dev', 'eth0', 'nodad']);
    // serve's router advertisement may already have installed a default route (via the bridge's link-local): replace it.
    await guest!.execOk(['ip', '-6', 'route', 'replace', 'default', 'via', 'fd10:0:2::1']);
    const podIps = cni.attachments[0]!.addresses.map((cidr) => cidr.split('/')[0]!);
    const [podIp4, podIp6] = [podIps.find((ip) => !ip.includes(':'))!, podIps.find((ip) => ip.includes(':'))!];
    expect(await probeUntil(guest!, '10.244.43.1', 8080, `node:8080 from ${podIp4}`)).toBe(`node:8080 from ${podIp4}`);
    expect(await probeUntil(guest!, 'fd00:10:244:43::1', 8080, `node:8080 from ${podIp6}`)).toBe(`node:8080 from ${podIp6}`);
  });

  it('a forged source MAC is dropped and counted; with the real MAC back the guest works again', async () => {
    const counts = await dropCounts(cni.pod);
    await guest!.execOk(['ip', 'link', 'set', 'eth0', 'address', FORGED_MAC]);
    try {
      expect(await probe(guest!, '10.244.43.1', 8080, { timeoutMs: FORGED_TIMEOUT_MS })).toBeOneOf(BLOCKED);
    } finally {
      await guest!.execOk(['ip', 'link', 'set', 'eth0', 'address', GUEST_MAC]);
    }
    expect(grew(counts, await dropCounts(cni.pod), 'spoof default: source MAC')).toBeGreaterThan(0);
    expect(await probeUntil(guest!, '10.244.43.1', 8080, 'node:8080 from 10.244.43.2')).toMatch(/^node:8080 from /);
  });

  it('a forged source IPv4 and IPv6 are dropped and counted; the honest addresses still work', async () => {
    await guest!.execOk(['ip', 'addr', 'add', '10.0.2.3/32', 'dev', 'eth0']);
    await guest!.execOk(['ip', 'addr', 'add', 'fd10:0:2::3/128', 'dev', 'eth0', 'nodad']);
    const counts = await dropCounts(cni.pod);
    expect(await probe(guest!, '10.244.43.1', 8080, { timeoutMs: FORGED_TIMEOUT_MS, localAddress: '10.0.2.3' })).toBeOneOf(BLOCKED);
    expect(await probe(guest!, 'fd00:10:244:43::1', 8080, { timeoutMs: FORGED_TIMEOUT_MS, localAddress: 'fd10:0:2::3' })).toBeOneOf(BLOCKED);
    const after = await dropCounts(cni.pod);
    expect(grew(counts, after, 'spoof default: source IPv4', 'spoof default: ARP sender IPv4')).toBeGreaterThan(0);
    expect(grew(counts, after, 'spoof default: source IPv6')).toBeGreaterThan(0);
    // `explain` shows the guard on the guest's tap with the same live counters.
    const explained = await agent(['explain', '--netns', cni.pod.path, '--state-dir', stateDir()]);
    expect(explained.stdout).toContain('spoof guard (drops what the guest sends from another address):');
    expect(explained.stdout).toMatch(/source IPv6\s+[1-9]\d* dropped/);
    expect(await probe(guest!, '10.244.43.1', 8080, { localAddress: '10.0.2.2' })).toMatch(/^node:8080 from 10\.244\.43\./);
    expect(await probe(guest!, 'fd00:10:244:43::1', 8080, { localAddress: 'fd10:0:2::2' })).toMatch(/^node:8080 from fd00:10:244:43::/);
  });

  it('the VMI annotation "false" removes the guard table in one transaction; teardown restores the namespace exactly', async () => {
    // The fake guest goes (its veth pair with it), so setup finds the pod as a real launcher would: a tap or nothing.
    if (guest) await deleteNetns(guest.name);
    guest = undefined;
    writeFileSync(join(dir, 'vmi-off.yaml'), vmiYaml('masquerade', 'false', GUEST_MAC));
    const off = setupSummary(
      await agent(['setup', '--vmi', join(dir, 'vmi-off.yaml'), '--netns', cni.pod.path, '--state-dir', stateDir(), '--spoof-protection']),
    );
    expect(off.actions.filter((action) => action.startsWith('nft -f'))).toHaveLength(1);
    expect((await cni.pod.execOk(['nft', 'list', 'tables'])).stdout).not.toContain('virt_net_agent');
    await serve?.stop();
    serve = undefined;
    const teardown = await agent(['teardown', '--vmi', join(dir, 'vmi-off.yaml'), '--netns', cni.pod.path, '--state-dir', stateDir()]);
    expect(teardown.stderr).toBe('');
    expect(teardown.code).toBe(0);
    expect(await dumpNetns(cni.pod)).toEqual(before);
  });
});

describe.skipIf(!netnsAvailable())('spoof protection: bridge binding (annotation)', { timeout: 900_000 }, () => {
  let cni: CniPod;
  let guest: Netns | undefined;
  let server: ChildProcessWithoutNullStreams | undefined;
  let dir: string;
  let before: unknown;
  let podIp: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-spoof-bridge-'));
    cni = await makeCniPod({ podCidr: '10.244.44.0/24' });
    podIp = cni.attachments[0]!.addresses[0]!.split('/')[0]!;
    before = await dumpNetns(cni.pod);
    writeFileSync(join(dir, 'vmi.yaml'), vmiYaml('bridge', 'true', null));
    setupSummary(await agent(['setup', '--vmi', join(dir, 'vmi.yaml'), '--netns', cni.pod.path, '--state-dir', join(dir, 'state')]));
    // The guest carries the pod's identity, configured statically as its DHCP lease would.
    guest = await guestOnTap(cni, cni.attachments[0]!.mac);
    await guest.execOk(['ip', 'addr', 'add', `${podIp}/24`, 'dev', 'eth0']);
    await guest.execOk(['ip', 'route', 'add', 'default', 'via', '10.244.44.1']);
    server = await startServer(cni.node, 'node', [8080]);
  }, 600_000);

  afterAll(async () => {
    server?.kill('SIGKILL');
    if (guest) await deleteNetns(guest.name);
    await cni?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('the guest with the pod IP and MAC reaches the node; a forged IPv4 is dropped and counted', async () => {
    expect(await probeUntil(guest!, '10.244.44.1', 8080, `node:8080 from ${podIp}`)).toBe(`node:8080 from ${podIp}`);
    await guest!.execOk(['ip', 'addr', 'add', '10.244.44.77/32', 'dev', 'eth0']);
    const counts = await dropCounts(cni.pod);
    expect(await probe(guest!, '10.244.44.1', 8080, { timeoutMs: FORGED_TIMEOUT_MS, localAddress: '10.244.44.77' })).toBeOneOf(BLOCKED);
    expect(grew(counts, await dropCounts(cni.pod), 'spoof default: source IPv4', 'spoof default: ARP sender IPv4')).toBeGreaterThan(0);
    expect(await probe(guest!, '10.244.44.1', 8080)).toBe(`node:8080 from ${podIp}`);
  });

  it('teardown removes the guard table with everything else: the namespace is restored exactly', async () => {
    const teardown = await agent(['teardown', '--vmi', join(dir, 'vmi.yaml'), '--netns', cni.pod.path, '--state-dir', join(dir, 'state')]);
    expect(teardown.code).toBe(0);
    expect(await dumpNetns(cni.pod)).toEqual(before);
  });
});
