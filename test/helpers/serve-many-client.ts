// Drives test/helpers/serve-many.ts (one ServingCore serving attachments added/removed on stdin) from a test or a bench.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SERVE_MANY = join(process.cwd(), 'dist/test/helpers/serve-many.js');

export interface ServeMany {
  readonly pid: number;
  /** Sends one request; resolves with its answer line. */
  request(value: object): Promise<Record<string, unknown>>;
  /** The core's log lines so far. */
  logs(): Record<string, unknown>[];
  /** SIGTERM, SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Starts serve-many (node flags first, e.g. the ones serve re-executes with) logging to logFile. */
export async function startServeMany(logFile: string, nodeFlags: readonly string[] = []): Promise<ServeMany> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [...nodeFlags, SERVE_MANY, logFile], { stdio: ['pipe', 'pipe', 'pipe'] });
  const waiting: ((line: Record<string, unknown>) => void)[] = [];
  let partial = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line !== '') waiting.shift()?.(JSON.parse(line) as Record<string, unknown>);
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve-many did not answer; stderr: ${stderr}`)), 60_000);
      waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  const ready = await next();
  if (ready['ready'] !== true) throw new Error(`serve-many: unexpected first line ${JSON.stringify(ready)}`);
  return {
    pid: child.pid ?? -1,
    request(value) {
      const answer = next();
      child.stdin.write(`${JSON.stringify(value)}\n`);
      return answer;
    },
    logs() {
      let text = '';
      try {
        text = readFileSync(logFile, 'utf8');
      } catch {
        return [];
      }
      return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
