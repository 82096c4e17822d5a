// serve's memory bound: re-executes the process once (execv, same PID) with V8 flags that suit a long-running server
// answering one guest, because V8 reads them only at start-up.
//
// --max-semi-space-size=1: by default V8 lets the young generation grow to 2 × 16 MiB under a steady allocation rate;
// for serve that growth was ~35 MiB of RSS after 10k DHCP exchanges (BENCHMARKS.md) for no gain: a 1 MiB semi-space
// is scavenged in well under a millisecond (1 instead of 2 MiB: anon RSS after 10k exchanges 15.8 → 13.6 MiB, DORA
// p50 and p99 unchanged).
// --single-threaded: no concurrent GC or compiler threads. Their malloc arenas and zones stayed resident after a burst
// of requests (~4 MiB of RSS after 10k exchanges); serve's heap is a few MiB, so doing that work on the main thread
// costs nothing measurable (DORA p50 unchanged).
// The re-exec happens before serve opens anything (stdio is kept, other descriptors are closed on exec); the PID,
// environment and arguments stay, so whoever supervises serve sees no difference. Skipped when node already has a
// semi-space size (argv or NODE_OPTIONS) or VIRT_NET_AGENT_SERVE_REEXEC=0; a failed execv is reported to the caller,
// which goes on with node's defaults.
import { readdirSync } from 'node:fs';
import { FD_CLOEXEC, F_GETFD, F_SETFD, libc } from '../drivers/libc.js';
import { describeErrno, errnoName } from '../drivers/kernel-error.js';

export const SERVE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--single-threaded'];
/**
 * The cni-daemon's: the same. Measured (test/bench/rows-serving.ts, a daemon plumbing 100 attachments, anonymous PSS
 * after a full GC, noisy runs): with node's defaults it kept 119-225 KiB per ADD it had run (six runs; V8's GC and
 * compiler threads' malloc arenas and the grown young generation stay committed), with the small young generation
 * alone 185 KiB (one run), with both flags 32 and 107 KiB (two runs); its ADD and DEL times were the same either way.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = SERVE_NODE_FLAGS;
export const SERVE_REEXEC_ENV = 'VIRT_NET_AGENT_SERVE_REEXEC';

/** Whether this process should re-execute itself with SERVE_NODE_FLAGS (not when node already has a semi-space size). */
export function needsHeapReexec(execArgv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  if (env[SERVE_REEXEC_ENV] === '0') return false;
  const set = (text: string): boolean => /--max-semi-space-size\b|--max_semi_space_size\b/.test(text);
  return !execArgv.some(set) && !set(env['NODE_OPTIONS'] ?? '');
}

/** The argv of the re-executed process: node, the flags (serve's by default), node's own flags, the script and its arguments. */
export function reexecArgv(execPath: string, execArgv: readonly string[], argv: readonly string[], flags: readonly string[] = SERVE_NODE_FLAGS): string[] {
  return [execPath, ...flags, ...execArgv, ...argv.slice(1)];
}

/**
 * Replaces this process with `node SERVE_NODE_FLAGS …same arguments` when needed. Returns only when no re-exec was
 * needed (null) or execv failed (the reason).
 */
export function reexecWithServeHeap(): string | null {
  return reexecWithNodeFlags(SERVE_NODE_FLAGS);
}

/** As reexecWithServeHeap, with other node flags (the cni-daemon's). */
export function reexecWithNodeFlags(flags: readonly string[]): string | null {
  if (!needsHeapReexec(process.execArgv, process.env)) return null;
  const calls = libc();
  // Node opens stdio close-on-exec; the new process must inherit it. Everything else must not leak into it.
  for (const entry of readdirSync('/proc/self/fd')) {
    const fd = Number(entry);
    if (!Number.isInteger(fd)) continue;
    const flags = calls.fcntlInt(fd, F_GETFD, 0);
    if (flags.ret < 0) continue; // the descriptor readdir itself used, already closed
    calls.fcntlInt(fd, F_SETFD, fd <= 2 ? flags.ret & ~FD_CLOEXEC : flags.ret | FD_CLOEXEC);
  }
  const result = calls.execv(process.execPath, reexecArgv(process.execPath, process.execArgv, process.argv, flags));
  const code = errnoName(result.errno);
  return `execv ${process.execPath}: ${describeErrno(code)}`;
}
