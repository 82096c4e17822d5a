// Test and bench helper process: one ServingCore (agent/serve/core.ts) serving attachments added and removed on stdin.
//
// Usage (compiled): node dist/test/helpers/serve-many.js LOGFILE
// stdin, one JSON object per line:
//   {"op":"add","id":ID,"netns":PATH,"stateDir":DIR}  serve the networks of DIR/state.json (what setup recorded) in PATH
//   {"op":"remove","id":ID}                           stop serving it (closes its sockets)
//   {"op":"gc"}                                       a full garbage collection (node --expose-gc only); answers
//                                                     with process.memoryUsage() after it
//   {"op":"close"}                                    stop everything and exit 0 (so does SIGTERM)
// stdout, one JSON line per request, in order: {"op","id","ok":true,"services":[…]} or {"op","id","ok":false,"error"}.
// The core's pino lines go to LOGFILE. Prints {"ready":true} first.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import type { AgentState } from '../../agent/apply/state-dir.js';
import { ServingCore } from '../../agent/serve/core.js';

interface Request {
  readonly op: 'add' | 'remove' | 'gc' | 'close';
  readonly id?: string;
  readonly netns?: string;
  readonly stateDir?: string;
}

const logFile = process.argv[2];
if (logFile === undefined) {
  process.stderr.write('usage: serve-many LOGFILE\n');
  process.exit(2);
}
const logger = pino({ level: process.env['VIRT_NET_AGENT_LOG_LEVEL'] ?? 'info' }, pino.destination({ dest: logFile, sync: true }));
const core = new ServingCore({ logger });
const answer = (value: object): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};

let closing = false;
async function close(): Promise<void> {
  if (closing) return;
  closing = true;
  await core.close();
  answer({ op: 'close', ok: true });
  process.exit(0);
}
process.on('SIGTERM', () => void close());

async function handle(request: Request): Promise<void> {
  const id = request.id ?? '';
  try {
    if (request.op === 'close') return await close();
    if (request.op === 'gc') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      answer({ op: 'gc', ok: gc !== undefined, memory: process.memoryUsage() });
      return;
    }
    if (request.op === 'remove') {
      answer({ op: 'remove', id, ok: await core.remove(id) });
      return;
    }
    const state = JSON.parse(readFileSync(join(request.stateDir ?? '', 'state.json'), 'utf8')) as AgentState;
    const networks = Object.entries(state.networks).map(([name, network]) => ({ name, state: network }));
    const served = await core.add({ id, netns: request.netns === undefined ? null : { netnsPath: request.netns }, networks, bindings: { attachment: id } });
    answer({ op: 'add', id, ok: true, services: served.services });
  } catch (error) {
    answer({ op: request.op, id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}

// Requests are handled one after the other, in order.
let queue: Promise<void> = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === '') return;
  const request = JSON.parse(line) as Request;
  queue = queue.then(() => handle(request));
});
answer({ ready: true });
