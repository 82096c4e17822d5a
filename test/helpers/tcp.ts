// Tiny TCP servers and probes run with node inside test namespaces: who answers, and from which address it saw us.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { waitFor, type Netns } from './netns.js';

/** A TCP server in `ns` on each port that answers "<label>:<port> from <peer address>" and closes. */
export async function startServer(ns: Netns, label: string, ports: readonly number[]): Promise<ChildProcessWithoutNullStreams> {
  const script =
    `const net=require('net');for(const p of ${JSON.stringify(ports)})` +
    `net.createServer(s=>s.end('${label}:'+p+' from '+s.remoteAddress.replace(/^::ffff:/,''))).listen({port:p,host:'::'},()=>console.log('ready '+p));`;
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script]);
  await new Promise<void>((resolve, reject) => {
    let ready = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      ready += chunk.toString().split('ready').length - 1;
      if (ready >= ports.length) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${label} server exited ${String(code)}`)));
  });
  return child;
}

export interface ProbeOptions {
  readonly timeoutMs?: number;
  /** Source address to bind (e.g. a forged one the guest added to its NIC). */
  readonly localAddress?: string;
}

/** Connects from `ns` to host:port; the server's answer, or the error code (ECONNREFUSED, TIMEOUT …). */
export async function probe(ns: Netns, host: string, port: number, options: ProbeOptions = {}): Promise<string> {
  const target = JSON.stringify({ port, host, ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}) });
  const script =
    `const s=require('net').connect(${target});let d='';s.on('data',c=>d+=c);s.on('end',()=>{console.log(d);process.exit(0)});` +
    `s.on('error',e=>{console.log(e.code);process.exit(0)});setTimeout(()=>{console.log('TIMEOUT');process.exit(0)},${options.timeoutMs ?? 15_000});`;
  return (await ns.exec([process.execPath, '-e', script])).stdout.trim();
}

/** Probes until the answer is `expected` (a fresh data path can take a moment: ARP, ND, DAD); the last answer. */
export async function probeUntil(ns: Netns, host: string, port: number, expected: string): Promise<string> {
  let last = '';
  await waitFor(async () => (last = await probe(ns, host, port)) === expected, { timeoutMs: 60_000, intervalMs: 500, what: `${host}:${port} to answer` }).catch(
    () => undefined,
  );
  return last;
}
