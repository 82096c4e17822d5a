// node:child_process, loaded on first use: only the nft binary fallback spawns a process, so most runs never compile it.
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export function nodeChildProcess(): typeof import('node:child_process') {
  return load('node:child_process') as typeof import('node:child_process');
}
