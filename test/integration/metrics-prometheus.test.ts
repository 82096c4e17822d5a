// The cni-daemon's metrics scraped by a real Prometheus: after pods go through containerd's CRI, PromQL through Prometheus' HTTP API returns the expected counts.
//
// Everything in the containerd harness' "node" netns (its loopback is private, so fixed ports clash with nobody): the
// daemon with --metrics-address 127.0.0.1:9101, Debian's prometheus with a private config and data dir scraping it
// every second, queries through its /api/v1/query. A spoofed frame written into the guest's tap is dropped by the
// guard and counted from nft at scrape time. Skipped (saying why) when containerd or prometheus cannot run here.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentPlugin, bridgeChain, containerdUnavailable, startContainerd, type Containerd } from '../helpers/containerd.js';
import { attachGuest, udhcpc } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAt, run, waitFor, type Netns } from '../helpers/netns.js';
import { spoofFramesCommand } from '../helpers/spoof-frames.js';

const SPOOF = 'virt-net-agent.kubevirt.io/spoof-protection';
const why =
  containerdUnavailable() ??
  (process.env['VNA_PROMETHEUS'] === '0' ? 'VNA_PROMETHEUS=0' : spawnSync('sh', ['-c', 'command -v prometheus'], { stdio: 'ignore' }).status !== 0 ? 'prometheus is not installed (apt-get install prometheus)' : null);

/**
 * Writes Ethernet frames whose source MAC is not the guest's into the tap (as a guest would) until the guard has
 * counted `count` drops; resolves with the guard's count as nft lists it afterwards.
 */
async function spoofFrames(netns: string, tap: string, count: number): Promise<number> {
  const r = await run(['nsenter', `--net=${netns}`, ...spoofFramesCommand('tap', tap, count)]);
  if (r.code !== 0) throw new Error(`spoofed frames: ${r.stderr.trim()}`);
  return Number(r.stdout.trim());
}

describe.skipIf(why !== null)(`metrics scraped by Prometheus${why !== null ? ` (skipped: ${why})` : ''}`, { timeout: 300_000 }, () => {
  let c: Containerd;
  let prometheus: ChildProcess | undefined;

  /** PromQL through Prometheus' HTTP API (from inside the node netns); the first sample's value, or null. */
  async function query(promql: string): Promise<number | null> {
    const script = `fetch('http://127.0.0.1:9090/api/v1/query?query='+encodeURIComponent(process.argv[1])).then(r=>r.text()).then(t=>process.stdout.write(t),e=>{process.stdout.write(String(e));process.exit(1)})`;
    const r = await c.node.exec([process.execPath, '-e', script, promql]);
    if (r.code !== 0) throw new Error(`query ${promql}: ${r.stdout}${r.stderr}`);
    const body = JSON.parse(r.stdout) as { status: string; data: { result: { value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`query ${promql}: ${r.stdout}`);
    const first = body.data.result[0];
    return first === undefined ? null : Number(first.value[1]);
  }

  async function expectQuery(promql: string, expected: number | null): Promise<void> {
    let last: number | null = null;
    await waitFor(async () => (last = await query(promql)) === expected, { timeoutMs: 60_000, intervalMs: 500, what: `${promql} = ${String(expected)}` }).catch(() => undefined);
    expect(last, promql).toBe(expected);
  }

  beforeAll(async () => {
    c = await startContainerd({ tag: 'metrics', plugins: (self) => [...bridgeChain(self), agentPlugin(self, 'masquerade')], daemonArgs: ['--metrics-address', '127.0.0.1:9101'] });
    const dir = join(c.dir, 'prometheus');
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(
      join(dir, 'prometheus.yml'),
      'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: virt-net-agent\n    static_configs:\n      - targets: ["127.0.0.1:9101"]\n',
    );
    prometheus = spawn('nsenter', [`--net=${c.node.path}`, 'prometheus', `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:9090', '--log.level=warn'], { stdio: 'ignore' });
    await waitFor(async () => (await query('up{job="virt-net-agent"}')) === 1, { timeoutMs: 60_000, intervalMs: 500, what: 'Prometheus scraping the daemon (up = 1)' });
  }, 180_000);

  afterAll(async () => {
    if (prometheus !== undefined && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await c?.cleanup();
  }, 120_000);

  it("after pods are added, refused and removed, PromQL returns the CNI requests, durations, attachments, the guest's DHCP exchange and spoofed frames dropped", async () => {
    await expectQuery('virt_net_agent_attachments', null);
    const id = await c.cri.runPodSandbox(c.podConfig('vm-metrics', { annotations: { [SPOOF]: 'true' } }));
    await expectQuery('virt_net_agent_cni_requests_total{command="ADD",code="0"}', 1);
    await expectQuery('virt_net_agent_cni_request_duration_seconds_count{command="ADD",code="0"}', 1);
    await expectQuery('virt_net_agent_attachments{binding="masquerade"}', 1);
    await expectQuery('virt_net_agent_spoof_dropped_packets_total', 0);
    // The daemon serves the guest's DHCP (serveDhcp): a fake guest on the in-pod bridge with the guest MAC leases.
    const netnsPath = await c.sandboxNetns(id);
    const cached = c.cacheEntries()[0];
    const guestMac = cached === undefined ? '' : ((JSON.parse(readFileSync(`/var/lib/cni/results/${cached}`, 'utf8')) as { result: { interfaces: { mac: string; sandbox?: string }[] } }).result.interfaces.find((i) => i.sandbox === id)?.mac ?? '');
    let guest: Netns | undefined;
    try {
      guest = await attachGuest(netnsAt(netnsPath), 'k6t-eth0', 'gst0', guestMac);
      const dir = join(c.dir, 'udhcpc');
      mkdirSync(dir, { recursive: true });
      const lease = await udhcpc(guest, dir);
      expect(lease.lease.addresses).toContain('10.0.2.2/24');
    } finally {
      if (guest !== undefined) await deleteNetns(guest.name);
    }
    await expectQuery('virt_net_agent_dhcp_messages_total{family="v4",type="DHCPDISCOVER",result="replied"}', 1);
    await expectQuery('virt_net_agent_dhcp_messages_total{family="v4",type="DHCPREQUEST",result="replied"}', 1);
    await expectQuery('virt_net_agent_router_advertisements_total', 0);
    // A guest sending from another MAC: the guard drops it, the counter shows it.
    const dropped = await spoofFrames(netnsPath, 'tap0', 5);
    expect(dropped).toBeGreaterThanOrEqual(5);
    await expectQuery('virt_net_agent_spoof_dropped_packets_total', dropped);

    // A refused ADD (bad annotation) is counted with its CNI error code; containerd's clean-up DEL succeeds.
    await expect(c.cri.runPodSandbox(c.podConfig('vm-refused', { annotations: { [SPOOF]: 'maybe' } }))).rejects.toThrow(/spoof-protection/);
    await expectQuery('sum(virt_net_agent_cni_requests_total{command="ADD",code!="0"})', 1);

    await c.cri.stopPodSandbox(id);
    await c.cri.removePodSandbox(id);
    // DELs: the refused pod's clean-up, this pod's Stop and Remove.
    await expectQuery('virt_net_agent_cni_requests_total{command="DEL",code="0"}', 3);
    await expectQuery('virt_net_agent_attachments{binding="masquerade"}', null);
    // The torn-down guard's drops stay counted (a counter never goes down).
    await expectQuery('virt_net_agent_spoof_dropped_packets_total', dropped);
  });
});
