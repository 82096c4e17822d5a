// Fuzz against the running `serve` in a pod: ≥ 1,000,000 seeded malformed/random datagrams over UDP from a fake guest,
// then the process must be alive, its log free of internal errors, its RSS roughly flat, and a real udhcpc still served.
//
// VNA_FUZZ_PACKETS sets the count: 20,000 by default in `npm test`; `npm run test:fuzz` runs the 1,000,000 the issue asks for.
// VNA_FUZZ_SEED sets the generator seed.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeCniPod } from '../helpers/cni.js';
import { agent, attachGuest, isServing, spawnServe, udhcpc } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAvailable, type Netns } from '../helpers/netns.js';

const PACKETS = Number(process.env['VNA_FUZZ_PACKETS'] ?? 20_000);
const SEED = Number(process.env['VNA_FUZZ_SEED'] ?? 20261122);
const SENDER = join(process.cwd(), 'test/helpers/dhcp-fuzz-sender.ts');

function vmRssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

interface SenderSummary {
  readonly sent: number;
  readonly bytesSent: number;
  readonly probes: number;
  readonly answered: number;
  readonly elapsedMs: number;
}

/** Runs the sender in the guest; calls onCheckpoint(n) as it passes each 100k. */
function runSender(guest: Netns, onCheckpoint: (sent: number) => void): Promise<SenderSummary> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', guest.name, process.execPath, '--import', 'tsx', SENDER, String(PACKETS), String(SEED), '10.0.2.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    let summary = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const checkpoint = /^checkpoint (\d+)$/.exec(line);
        if (checkpoint) onCheckpoint(Number(checkpoint[1]));
        else if (line.startsWith('{')) summary = line;
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code) => {
      if (code !== 0 || summary === '') reject(new Error(`fuzz sender exited ${String(code)}: ${err}`));
      else resolve(JSON.parse(summary) as SenderSummary);
    });
  });
}

describe.skipIf(!netnsAvailable())('serve under fuzz', { timeout: 3_600_000 }, () => {
  it(`survives ${PACKETS} malformed/random datagrams with flat memory and still serves udhcpc`, async () => {
    const cni = await makeCniPod({ podCidr: '10.244.31.0/24', mtu: 1450 });
    const dir = mkdtempSync(join(tmpdir(), 'vna-fuzz-'));
    let sender: Netns | undefined;
    let client: Netns | undefined;
    const serveArgs = ['--state-dir', join(dir, 'state'), '--netns', cni.pod.path];
    let serve: ReturnType<typeof spawnServe> | undefined;
    try {
      const vmi = join(dir, 'vmi.yaml');
      writeFileSync(vmi, `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: fuzzvmi, namespace: default, uid: fuzz-${process.pid}}
spec:
  domain: {devices: {interfaces: [{name: default, masquerade: {}}]}}
  networks: [{name: default, pod: {}}]
`);
      const setup = await agent(['setup', '--vmi', vmi, '--netns', cni.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null']);
      expect(setup.stderr).toBe('');
      serve = spawnServe(serveArgs, {}, { keepLogs: false });
      await serve.waitForLog(isServing, 'serving');

      sender = await attachGuest(cni.pod, 'k6t-eth0', 'vfuzz');
      await sender.execOk(['ip', 'addr', 'add', '10.0.2.2/24', 'dev', 'eth0']);
      const rss: { sent: number; kib: number }[] = [{ sent: 0, kib: vmRssKiB(serve.pid) }];
      const pid = serve.pid;
      const summary = await runSender(sender, (sent) => rss.push({ sent, kib: vmRssKiB(pid) }));

      // Alive and still serving a real client, on a fresh guest.
      expect(() => process.kill(pid, 0)).not.toThrow();
      const afterFuzz = vmRssKiB(pid);
      client = await attachGuest(cni.pod, 'k6t-eth0', 'vclient');
      const lease = await udhcpc(client, mkdtempSync(join(dir, 'client-')));
      expect(lease.lease.addresses).toEqual(['10.0.2.2/24']);

      expect(await serve.stop()).toEqual({ code: 0, signal: null });
      expect(serve.stderr()).toBe('');
      const counters = serve.logs.find((line) => line['msg'] === 'dhcpv4 server stopped');
      expect(counters).toBeDefined();
      const problems = serve.logs.filter((line) => line['level'] === 'error' || line['level'] === 'fatal' || 'raw' in line);
      expect(problems).toEqual([]);
      expect(counters!['internalErrors']).toBe(0);
      // Paced by probes, the server saw most datagrams: the kernel buffer did not swallow the test. (On a loaded
      // 2-core machine about 10 % can still be dropped by the socket buffer between two probes.)
      const seen = Number(counters!['received']);
      expect(seen).toBeGreaterThanOrEqual(0.8 * (summary.sent + summary.probes));
      expect(summary.answered).toBeGreaterThanOrEqual(0.9 * summary.probes);
      expect(Number(counters!['decodeErrors'])).toBeGreaterThan(0.5 * summary.sent);

      // Memory roughly flat: after the first 100k (warm JIT, pino buffers) vs the end, generous bound.
      const base = rss.find((sample) => sample.sent === 100_000) ?? rss[0]!;
      expect(afterFuzz).toBeLessThan(base.kib * 1.5 + 32 * 1024);
      process.stdout.write(
        `fuzz: ${summary.sent} datagrams (${(summary.bytesSent / 1e6).toFixed(1)} MB) + ${summary.probes} probes in ${(summary.elapsedMs / 1000).toFixed(1)} s; ` +
          `server saw ${seen} (decode errors ${String(counters!['decodeErrors'])}, replies ${String(counters!['replies'])}, ignored ${String(counters!['ignored'])}, ` +
          `logged ${String(counters!['logged'])}); VmRSS KiB ${rss.map((sample) => `${sample.sent}:${sample.kib}`).join(' ')} end:${afterFuzz}\n`,
      );
    } finally {
      if (serve) await serve.stop('SIGKILL');
      for (const guest of [sender, client]) if (guest) await deleteNetns(guest.name);
      await cni.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
