// nftables through the nft binary: a whole ruleset text as one `nft -f -` transaction (one process), and `nft list ruleset`.
//
// The child inherits the network namespace of the thread that spawns it. child_process.spawn forks synchronously on
// the main thread, so after enterNetns (or inside NetnsScope.run, passed here as `spawnIn`) nft runs in the pod.
import type { ChildProcess } from 'node:child_process';
import { nodeChildProcess } from './lazy-child-process.js';
import { KernelError } from './kernel-error.js';

export interface NftOptions {
  /** Wraps the synchronous spawn() call, e.g. NetnsScope.run; default: spawn in the current namespace. */
  readonly spawnIn?: <T>(fn: () => T) => T;
  /** The nft binary; default "nft" from PATH. */
  readonly binary?: string;
  /** Kill nft after this long; default 60 s (the machine may be loaded). */
  readonly timeoutMs?: number;
}

export interface Nft {
  /** Applies the text atomically (nft -f -); on failure nothing is applied and the error carries nft's first stderr line. */
  apply(rulesetText: string): Promise<void>;
  /** `nft list ruleset` output. */
  list(): Promise<string>;
}

interface NftResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** First non-empty stderr line, e.g. "/dev/stdin:3:5-10: Error: syntax error, unexpected …". */
export function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
}

export function createNft(options: NftOptions = {}): Nft {
  const binary = options.binary ?? 'nft';
  const spawnIn = options.spawnIn ?? (<T>(fn: () => T): T => fn());
  const timeoutMs = options.timeoutMs ?? 60_000;

  function run(args: readonly string[], input: string, op: string): Promise<NftResult> {
    return new Promise((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawnIn(() => nodeChildProcess().spawn(binary, [...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
      } catch (err) {
        reject(new KernelError(op, null, `cannot start ${binary}: ${err instanceof Error ? err.message : String(err)}`));
        return;
      }
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let settled = false;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        if (!settled) {
          settled = true;
          reject(new KernelError(op, 'ETIMEDOUT', `${binary} did not finish within ${timeoutMs} ms`));
        }
      }, timeoutMs);
      child.stdout?.on('data', (b: Buffer) => out.push(b));
      child.stderr?.on('data', (b: Buffer) => errOut.push(b));
      child.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        const hint = err.code === 'ENOENT' ? ' (is the nftables package installed?)' : '';
        reject(new KernelError(op, err.code ?? null, `cannot run ${binary}: ${err.message}${hint}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        resolve({
          code: code ?? (signal !== null ? 128 : 1),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(errOut).toString('utf8'),
        });
      });
      // nft may exit before reading all of stdin (syntax error on line 1): the exit status tells the story.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input);
    });
  }

  return {
    async apply(rulesetText) {
      const op = 'nft -f';
      const r = await run(['-f', '-'], rulesetText, op);
      if (r.code !== 0) {
        throw new KernelError(op, null, firstLine(r.stderr) || `${binary} exited with status ${r.code}`);
      }
    },
    async list() {
      const op = 'nft list ruleset';
      const r = await run(['list', 'ruleset'], '', op);
      if (r.code !== 0) {
        throw new KernelError(op, null, firstLine(r.stderr) || `${binary} exited with status ${r.code}`);
      }
      return r.stdout;
    },
  };
}
