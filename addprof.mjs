import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { handleCniInvocation } from './dist/agent/cni/invocation.js';
import { parseAgentConfig } from './dist/agent/cni/agent-config.js';
import { makeBenchPod } from './dist/test/bench/pods.js';
const work = mkdtempSync('/tmp/metprof/a');
const stateRoot = join(work, 'state'); mkdirSync(join(work,'batch'));
const agent = { ...parseAgentConfig('', 'bench'), stateRoot };
const N = Number(process.env.N ?? 30);
const pods = [];
for (let i = 0; i < N; i++) pods.push(await makeBenchPod(join(work, 'batch')));
let session;
if (process.env.PROF) { const { Session } = await import('node:inspector/promises'); session = new Session(); session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.setSamplingInterval', { interval: 100 }); await session.post('Profiler.start'); }
const adds = [], dels = [];
try {
  for (let i = 0; i < N; i++) {
    const pod = pods[i];
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: pod.podMac, sandbox: pod.pod.path }], ips: [{ address: `${pod.podIp}/24`, gateway: pod.nodeIp, interface: 0 }], routes: [{ dst: '0.0.0.0/0' }] };
    const conf = { cniVersion: '1.0.0', name: 'benchnet', type: 'virt-net-agent', binding: 'masquerade', prevResult };
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `b${i}`, CNI_NETNS: pod.pod.path, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
    let t = process.hrtime.bigint();
    const out = await handleCniInvocation({ env, stdin: JSON.stringify(conf) }, agent);
    adds.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (out.exitCode !== 0) throw new Error(out.stdout);
  }
  if (session) { const { profile } = await session.post('Profiler.stop'); writeFileSync('/tmp/metprof/add.cpuprofile', JSON.stringify(profile)); session = undefined; }
} finally { for (const p of pods) await p.cleanup().catch(() => {}); }
if (session) { const { profile } = await session.post('Profiler.stop'); writeFileSync('/tmp/metprof/add.cpuprofile', JSON.stringify(profile)); }
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1].toFixed(2); };
console.log("ADD median", med(adds.slice(3)));
