// Test harness for `serve`: the agent CLI spawned in a pod, fake guests (a veth on the bridge in place of the tap), and real DHCP clients.
//
// The clients' scripts apply the lease the way a guest's network scripts would (address + prefix, MTU, classless
// routes or the router as default route) and write the DNS they got to a resolv.conf in the test's temp dir (never
// /etc), so tests check the result as the client applied it, not only the bytes on the wire.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deleteNetns, makeNetns, waitFor, type Netns } from './netns.js';

import { CLI } from './agent-run.js';

export { agent, type AgentRun } from './agent-run.js';

/** A running `serve`: its pid, its log lines (parsed JSON), and a clean stop. */
export interface ServeProcess {
  readonly pid: number;
  /** Every JSON log line so far (non-JSON stdout lines are kept as {raw}). */
  readonly logs: Record<string, unknown>[];
  stderr(): string;
  /** Resolves when a log line matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM (default) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `serve` with `args`. `command` replaces `node <program>` as the start of the command line (e.g. ip netns
 * exec … setpriv … node bundle): it must exec, not fork, so that the child's PID is serve's. `subcommand` replaces
 * `serve` (e.g. `sidecar --serve`, which logs the same lines).
 */
export function spawnServe(
  args: readonly string[],
  env: Record<string, string> = {},
  options: { keepLogs?: boolean; program?: string; command?: readonly string[]; subcommand?: readonly string[] } = {},
): ServeProcess {
  const [file = process.execPath, ...prefix] = options.command ?? [process.execPath, options.program ?? CLI];
  const child: ChildProcess = spawn(file, [...prefix, ...(options.subcommand ?? ['serve']), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let partial = '';
  let stderr = '';
  const keep = options.keepLogs ?? true;
  const waiters: { match: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      if (text === '') continue;
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { raw: text };
      }
      if (keep || line['level'] !== 'info' || line['msg'] === 'serving' || String(line['msg']).includes('stopped')) logs.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.match(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return {
    pid: child.pid ?? -1,
    logs,
    stderr: () => stderr,
    waitForLog(match, what, timeoutMs = 120_000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`serve: no log line "${what}" within ${timeoutMs} ms; stderr: ${stderr}; last logs: ${JSON.stringify(logs.slice(-5))}`)), timeoutMs);
        void exited.then(({ code }) => reject(new Error(`serve exited (${String(code)}) before "${what}": ${stderr}`)));
        waiters.push({ match, resolve: (line) => { clearTimeout(timer); resolve(line); } });
      });
    },
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
    exited,
  };
}

export function isServing(line: Record<string, unknown>): boolean {
  return line['msg'] === 'serving';
}

/** A fake guest: a new netns whose eth0 is a veth whose peer (`portName`) is a port of `bridge` in the pod. */
export async function attachGuest(pod: Netns, bridge: string, portName: string, mac?: string): Promise<Netns> {
  const guest = await makeNetns('vna-guest');
  try {
    await pod.execOk(['ip', 'link', 'add', portName, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guest.name]);
    await pod.execOk(['ip', 'link', 'set', portName, 'master', bridge, 'up']);
    if (mac !== undefined) await guest.execOk(['ip', 'link', 'set', 'eth0', 'address', mac]);
    await guest.execOk(['ip', 'link', 'set', 'lo', 'up']);
    await guest.execOk(['ip', 'link', 'set', 'eth0', 'up']);
    return guest;
  } catch (err) {
    await deleteNetns(guest.name);
    throw err;
  }
}

/** What a client applied, read back from the guest and from the files its script wrote. */
export interface AppliedLease {
  /** "10.0.2.2/24" as `ip -j addr` shows it on eth0. */
  readonly addresses: readonly string[];
  readonly mtu: number;
  /** `ip -j route` of the main table: "dst via gw" or "dst dev eth0". */
  readonly routes: readonly string[];
  /** The resolv.conf the client script wrote. */
  readonly resolvConf: string;
  /** The client's own variables for the lease (udhcpc's env, or dhclient's new_*). */
  readonly env: Readonly<Record<string, string>>;
}

export async function readApplied(guest: Netns, dir: string, envFile: string): Promise<AppliedLease> {
  const addrs = JSON.parse((await guest.execOk(['ip', '-j', 'addr', 'show', 'dev', 'eth0'])).stdout) as { mtu: number; addr_info: { family: string; local: string; prefixlen: number }[] }[];
  const routes = JSON.parse((await guest.execOk(['ip', '-j', 'route', 'show'])).stdout) as { dst: string; gateway?: string; dev: string }[];
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(dir, envFile), 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return {
    addresses: (addrs[0]?.addr_info ?? []).filter((info) => info.family === 'inet').map((info) => `${info.local}/${info.prefixlen}`),
    mtu: addrs[0]?.mtu ?? 0,
    routes: routes.map((route) => (route.gateway ? `${route.dst} via ${route.gateway}` : `${route.dst} dev ${route.dev}`)).sort(),
    resolvConf: readFileSync(join(dir, 'resolv.conf'), 'utf8'),
    env,
  };
}

// Applies a lease: address, MTU, RFC 3442 routes (which replace the router, RFC 3442 §4) or the router; DNS to $DIR/resolv.conf.
const UDHCPC_SCRIPT = `#!/bin/sh
# udhcpc lease script for tests: $1 is deconfig|bound|renew|nak|leasefail.
dir="$(dirname "$0")"
case "$1" in
deconfig) ip addr flush dev "$interface"; ip link set dev "$interface" up ;;
bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/$subnet" dev "$interface"
  [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
  if [ -n "$staticroutes" ]; then
    set -- $staticroutes
    while [ $# -ge 2 ]; do
      if [ "$2" = 0.0.0.0 ]; then ip route replace "$1" dev "$interface"; else ip route replace "$1" via "$2" dev "$interface"; fi
      shift 2
    done
  elif [ -n "$router" ]; then
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
  fi
  { [ -n "$search" ] && echo "search $search"; [ -n "$domain" ] && echo "domain $domain"; for d in $dns; do echo "nameserver $d"; done; } > "$dir/resolv.conf"
  env | grep -E '^(ip|subnet|router|dns|domain|search|mtu|staticroutes|hostname|lease|serverid|interface)=' > "$dir/udhcpc.env.tmp"
  echo "reason=$1" >> "$dir/udhcpc.env.tmp"
  mv "$dir/udhcpc.env.tmp" "$dir/udhcpc.env"
  ;;
esac
exit 0
`;

const DHCLIENT_SCRIPT = `#!/bin/sh
# dhclient-script for tests: $reason is PREINIT|BOUND|RENEW|REBIND|REBOOT|EXPIRE|FAIL|STOP|RELEASE|...
dir="$(dirname "$0")"
case "$reason" in
PREINIT) ip link set dev "$interface" up ;;
BOUND|RENEW|REBIND|REBOOT)
  ip addr flush dev "$interface"
  ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
  [ -n "$new_interface_mtu" ] && ip link set dev "$interface" mtu "$new_interface_mtu"
  if [ -n "$new_rfc3442_classless_static_routes" ]; then
    set -- $new_rfc3442_classless_static_routes
    while [ $# -gt 0 ]; do
      width=$1; shift
      octets=$(( (width + 7) / 8 )); dst=""; i=0
      while [ $i -lt 4 ]; do
        if [ $i -lt $octets ]; then o=$1; shift; else o=0; fi
        dst="$dst\${dst:+.}$o"; i=$((i + 1))
      done
      gw="$1.$2.$3.$4"; shift 4
      if [ "$gw" = 0.0.0.0 ]; then ip route replace "$dst/$width" dev "$interface"; else ip route replace "$dst/$width" via "$gw" dev "$interface"; fi
    done
  elif [ -n "$new_routers" ]; then
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done
  fi
  { [ -n "$new_domain_search" ] && echo "search $new_domain_search"; [ -n "$new_domain_name" ] && echo "domain $new_domain_name"; for d in $new_domain_name_servers; do echo "nameserver $d"; done; } > "$dir/resolv.conf"
  env | grep -E '^new_' > "$dir/dhclient.env.tmp"
  echo "reason=$reason" >> "$dir/dhclient.env.tmp"
  mv "$dir/dhclient.env.tmp" "$dir/dhclient.env"
  ;;
esac
exit 0
`;

const DHCLIENT_CONF = `option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, domain-search, host-name,
        interface-mtu, rfc3442-classless-static-routes;
timeout 60;
retry 60;
`;

export interface ClientRun {
  readonly lease: AppliedLease;
  /** From spawn to the script having written the bound lease. */
  readonly elapsedMs: number;
  /** The client's stderr/stdout, for failure messages. */
  readonly output: string;
}

function writeScript(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
}

async function runUntilBound(guest: Netns, dir: string, envFile: string, argv: readonly string[], timeoutMs: number): Promise<ClientRun> {
  const started = performance.now();
  const child = spawn('ip', ['netns', 'exec', guest.name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited = false;
  child.on('close', () => (exited = true));
  try {
    await waitFor(async () => existsSync(join(dir, envFile)) || exited, { timeoutMs, intervalMs: 20, what: `${argv[0] ?? 'client'} bound` });
    const elapsedMs = performance.now() - started;
    if (!existsSync(join(dir, envFile))) throw new Error(`${argv[0] ?? 'client'} exited without a lease:\n${output}`);
    return { lease: await readApplied(guest, dir, envFile), elapsedMs, output };
  } catch (err) {
    throw new Error(`${(err as Error).message}\nclient output:\n${output}`);
  } finally {
    if (!exited) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
    }
  }
}

/** busybox udhcpc: obtains a lease once (-q), the script applies it; resolves when bound. */
export function udhcpc(guest: Netns, dir: string, timeoutMs = 60_000): Promise<ClientRun> {
  const script = writeScript(dir, 'udhcpc.sh', UDHCPC_SCRIPT);
  return runUntilBound(guest, dir, 'udhcpc.env', ['udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '20', '-T', '1', '-A', '1', '-s', script, '-O', 'search', '-O', 'staticroutes', '-O', 'mtu'], timeoutMs);
}

/** ISC dhclient in the foreground with its files in `dir`; killed once the script saw BOUND. */
export function dhclient(guest: Netns, dir: string, timeoutMs = 90_000): Promise<ClientRun> {
  const script = writeScript(dir, 'dhclient.sh', DHCLIENT_SCRIPT);
  const conf = join(dir, 'dhclient.conf');
  writeFileSync(conf, DHCLIENT_CONF);
  return runUntilBound(
    guest,
    dir,
    'dhclient.env',
    ['dhclient', '-4', '-d', '-v', '-1', '-cf', conf, '-sf', script, '-lf', join(dir, 'dhclient.leases'), '-pf', join(dir, 'dhclient.pid'), 'eth0'],
    timeoutMs,
  );
}
