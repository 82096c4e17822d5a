// CNI benchmarks: ADD and DEL wall time of bridge + host-local + virt-net-agent (through the shim and the cni-daemon) vs the same chain without ours.
//
// The plugins are exec'd the way libcni does it (one process per plugin, in conflist order for ADD with the previous
// result on stdin, reverse order for DEL), directly from this process: each spawn happens with the main thread inside
// the "node" netns (openNetnsScope), so no nsenter or `ip netns exec` is timed. A fresh pod netns per round.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { openNetnsScope, type NetnsScope } from '../../agent/apply/netns.js';
import { deleteNetns, makeNetns, type Netns } from '../helpers/netns.js';
import { SHIM, startDaemonProcess } from '../helpers/cni-shim.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { interleave, median, msSince, p90 } from './stats.js';
import { fmtMs, skipped, type Row } from './table.js';
import type { BenchEnv } from './rows-setup.js';

const REFERENCE = '/usr/lib/cni';

interface Exec {
  readonly code: number | null;
  readonly stdout: string;
  readonly ms: number;
}

/** Execs one plugin in the node netns with the CNI environment and `stdin`; resolves with its output and wall time. */
function execPlugin(scope: NetnsScope, file: string, env: Record<string, string>, stdin: string): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child: ChildProcess = scope.run(() => spawn(file, [], { env, stdio: ['pipe', 'pipe', 'ignore'] }));
    const out: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), ms: msSince(start) }));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
  });
}

interface Chain {
  readonly name: string;
  readonly cniVersion: string;
  readonly plugins: readonly ({ type: string } & Record<string, unknown>)[];
}

function pluginFile(type: string): string {
  return type === 'virt-net-agent' ? SHIM : join(REFERENCE, type);
}

/** libcni's AddNetworkList: each plugin with the previous one's result as prevResult; throws on the first error. */
async function chainAdd(scope: NetnsScope, chain: Chain, base: Record<string, string>): Promise<{ ms: number; result: unknown }> {
  let prevResult: unknown;
  let ms = 0;
  for (const plugin of chain.plugins) {
    const conf = { ...plugin, cniVersion: chain.cniVersion, name: chain.name, ...(prevResult !== undefined ? { prevResult } : {}) };
    const r = await execPlugin(scope, pluginFile(plugin.type), { ...base, CNI_COMMAND: 'ADD' }, JSON.stringify(conf));
    ms += r.ms;
    if (r.code !== 0) throw new Error(`${plugin.type} ADD exited ${String(r.code)}: ${r.stdout.trim().slice(0, 300)}`);
    prevResult = JSON.parse(r.stdout) as unknown;
  }
  return { ms, result: prevResult };
}

/** libcni's DelNetworkList: reverse order, each with the cached result as prevResult. Wall time in all and per plugin type. */
async function chainDel(scope: NetnsScope, chain: Chain, base: Record<string, string>, result: unknown): Promise<{ ms: number; byType: Map<string, number> }> {
  let ms = 0;
  const byType = new Map<string, number>();
  for (const plugin of [...chain.plugins].reverse()) {
    const conf = { ...plugin, cniVersion: chain.cniVersion, name: chain.name, prevResult: result };
    const r = await execPlugin(scope, pluginFile(plugin.type), { ...base, CNI_COMMAND: 'DEL' }, JSON.stringify(conf));
    ms += r.ms;
    byType.set(plugin.type, (byType.get(plugin.type) ?? 0) + r.ms);
    if (r.code !== 0) throw new Error(`${plugin.type} DEL exited ${String(r.code)}: ${r.stdout.trim().slice(0, 300)}`);
  }
  return { ms, byType };
}

let podCounter = 0;

export async function cniRows(env: BenchEnv): Promise<Row[]> {
  const dir = mkdtempSync(join(env.workDir, 'cni-'));
  const node: Netns = await makeNetns('cnibnode');
  const scope = openNetnsScope({ netnsPath: node.path });
  // At the default log level, as deployed: one pino line per invocation.
  // The node's agent configuration: the state root in the bench's folder.
  const daemon = await startDaemonProcess(join(dir, 'cni.sock'), { config: writeAgentConfig(dir) });
  // The same daemon with serving off (serveDhcp: false): what serving each attachment adds to ADD and DEL (issue 27).
  const quiet = await startDaemonProcess(join(dir, 'cni-noserve.sock'), { config: writeAgentConfig(dir, { stateRoot: join(dir, 'state-noserve'), serveDhcp: false }) });
  try {
    const bridge = { type: 'bridge', bridge: 'cnibench0', isGateway: true, ipMasq: false, ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: '10.250.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] } };
    const reference: Chain = { name: 'benchnet', cniVersion: '1.0.0', plugins: [bridge] };
    const ours: Chain = { name: 'benchnet', cniVersion: '1.0.0', plugins: [bridge, { type: 'virt-net-agent', binding: 'masquerade' }] };
    const baseEnv = (pod: Netns, id: string, socket = daemon.socket): Record<string, string> => ({
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_CONTAINERID: id,
      CNI_NETNS: pod.path,
      CNI_IFNAME: 'eth0',
      CNI_PATH: REFERENCE,
      VIRT_NET_AGENT_CNI_SOCKET: socket,
    });
    const del = new Map<string, number[]>([
      ['reference', []],
      ['ours', []],
      ['ours-noserve', []],
    ]);
    // Per plugin, to show where a DEL's time goes: ours alone, and bridge's with and without ours before it.
    const delOfType = new Map<string, number[]>();
    const note = (key: string, ms: number | undefined): void => {
      if (ms !== undefined) delOfType.set(key, [...(delOfType.get(key) ?? []), ms]);
    };
    const measure = (chain: Chain, key: string) => async (): Promise<number> => {
      const pod = await makeNetns('cnibpod');
      const base = baseEnv(pod, `bench-${process.pid}-${podCounter++}`, key === 'ours-noserve' ? quiet.socket : daemon.socket);
      try {
        const add = await chainAdd(scope, chain, base);
        const d = await chainDel(scope, chain, base, add.result);
        del.get(key)?.push(d.ms);
        note(`${key}:virt-net-agent`, d.byType.get('virt-net-agent'));
        note(`${key}:bridge`, d.byType.get('bridge'));
        return add.ms;
      } finally {
        await deleteNetns(pod.name);
      }
    };
    // Does our ADD work at all? (The plugin's commands are agent/cni's; this file measures them once they exist.)
    let oursError: string | undefined;
    try {
      await measure(ours, 'ours')();
      await measure(reference, 'reference')();
    } catch (err) {
      oursError = err instanceof Error ? err.message : String(err);
    }
    del.set('ours', []);
    del.set('ours-noserve', []);
    del.set('reference', []);
    delOfType.clear();
    const rows: Row[] = [];
    if (oursError === undefined) {
      await measure(ours, 'ours-noserve')();
      del.set('ours-noserve', []);
      const samples = await interleave(
        [
          { name: 'ours', run: measure(ours, 'ours') },
          { name: 'reference', run: measure(reference, 'reference') },
          { name: 'ours-noserve', run: measure(ours, 'ours-noserve') },
        ],
        env.rounds,
      );
      const a = samples.get('ours') ?? [];
      const b = samples.get('reference') ?? [];
      const da = del.get('ours') ?? [];
      const db = del.get('reference') ?? [];
      rows.push(
        { what: 'CNI ADD: bridge+host-local+virt-net-agent (shim → daemon) vs bridge+host-local', agent: fmtMs(median(a), p90(a)), baseline: fmtMs(median(b), p90(b)), ratio: median(a) / median(b), target: '≤ 2.0×', met: median(a) <= 2 * median(b) },
        { what: 'CNI DEL: same chains, reverse order', agent: fmtMs(median(da), p90(da)), baseline: fmtMs(median(db), p90(db)), ratio: median(da) / median(db), target: '≤ 1.5×', met: median(da) <= 1.5 * median(db) },
      );
      // What serving adds to an invocation, as the daemon itself times it (the chains' wall times vary far more than
      // that between rounds on a shared machine): starting an attachment's services before the ADD is answered,
      // stopping them before (and checking again after) the DEL.
      const q = samples.get('ours-noserve') ?? [];
      const dq = del.get('ours-noserve') ?? [];
      const timed = (msg: string): number[] =>
        daemon
          .output()
          .split('\n')
          .filter((line) => line.includes(`"msg":"${msg}"`))
          .map((line) => Number((JSON.parse(line) as { ms?: number }).ms ?? Number.NaN));
      const serveMs = timed('attachment served');
      const stopMs = timed('attachment no longer served');
      rows.push(
        { what: "CNI ADD: serving's part (the daemon starting the attachment's DHCP server before it answers) of the chain's ADD", agent: fmtMs(median(serveMs), p90(serveMs)), baseline: fmtMs(median(a), p90(a)), ratio: median(serveMs) / median(a), target: '≤ 0.05×', met: median(serveMs) <= 0.05 * median(a), note: `the same chain on a daemon with serveDhcp: false: ADD ${fmtMs(median(q), p90(q))}, DEL ${fmtMs(median(dq), p90(dq))} (interleaved; the difference is within the rounds' noise here)` },
        { what: "CNI DEL: serving's part (stopping the attachment's DHCP server) of the chain's DEL", agent: fmtMs(median(stopMs), p90(stopMs)), baseline: fmtMs(median(da), p90(da)), ratio: median(stopMs) / median(da), target: '≤ 0.05×', met: median(stopMs) <= 0.05 * median(da) },
      );
      const ourDel = delOfType.get('ours:virt-net-agent') ?? [];
      const bridgeAfterOurs = delOfType.get('ours:bridge') ?? [];
      const bridgeAlone = delOfType.get('reference:bridge') ?? [];
      rows.push(
        { what: "CNI DEL, one invocation: virt-net-agent's (shim → daemon) vs bridge's (+ host-local) in the reference chain", agent: fmtMs(median(ourDel), p90(ourDel)), baseline: fmtMs(median(bridgeAlone), p90(bridgeAlone)), ratio: median(ourDel) / median(bridgeAlone), target: 'informational', met: null },
        { what: "CNI DEL, one invocation: bridge's right after ours vs bridge's in the reference chain (the kernel still deleting our links)", agent: fmtMs(median(bridgeAfterOurs), p90(bridgeAfterOurs)), baseline: fmtMs(median(bridgeAlone), p90(bridgeAlone)), ratio: median(bridgeAfterOurs) / median(bridgeAlone), target: 'informational', met: null },
      );
    } else {
      rows.push(skipped('CNI ADD: bridge+host-local+virt-net-agent (shim → daemon) vs bridge+host-local', '≤ 2.0×', `our plugin's ADD fails: ${oursError}`));
      rows.push(skipped('CNI DEL: same chains, reverse order', '≤ 1.5×', 'needs ADD'));
    }
    // The delivery alone: one VERSION answered through shim → daemon, and by the fallback executable, vs a Go plugin.
    const version = (file: string, extra: Record<string, string>) => async (): Promise<number> => {
      const r = await execPlugin(scope, file, { CNI_COMMAND: 'VERSION', ...extra }, '');
      if (r.code !== 0) throw new Error(`${file} VERSION exited ${String(r.code)}: ${r.stdout}`);
      return r.ms;
    };
    const v = await interleave(
      [
        { name: 'shim', run: version(SHIM, { VIRT_NET_AGENT_CNI_SOCKET: daemon.socket }) },
        { name: 'fallback', run: version(SHIM, { VIRT_NET_AGENT_CNI_SOCKET: join(dir, 'no-daemon.sock') }) },
        { name: 'bridge', run: version(join(REFERENCE, 'bridge'), {}) },
      ],
      Math.max(env.rounds, 15),
    );
    const [vs, vf, vb] = [v.get('shim') ?? [], v.get('fallback') ?? [], v.get('bridge') ?? []];
    rows.push(
      { what: 'CNI VERSION: shim → cni-daemon vs the bridge plugin (process start + answer)', agent: fmtMs(median(vs), p90(vs)), baseline: fmtMs(median(vb), p90(vb)), ratio: median(vs) / median(vb), target: '≤ 2.0×', met: median(vs) <= 2 * median(vb) },
      { what: 'CNI VERSION: no daemon, shim → fallback executable (node SEA) vs the bridge plugin', agent: fmtMs(median(vf), p90(vf)), baseline: fmtMs(median(vb), p90(vb)), ratio: median(vf) / median(vb), target: 'informational', met: null },
    );
    return rows;
  } finally {
    await daemon.stop();
    await quiet.stop();
    scope.close();
    await deleteNetns(node.name);
  }
}
