// Node built-ins that only some runs need, loaded on first use instead of at start-up.
//
// A cold `setup` of a masquerade network hashes no name and spawns no process; importing node:crypto (17 internal
// modules) and node:child_process (net, dgram, streams) statically compiled them in every run (~10 ms of a ~200 ms
// cold start here).
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export function nodeCrypto(): typeof import('node:crypto') {
  return load('node:crypto') as typeof import('node:crypto');
}

export function nodeChildProcess(): typeof import('node:child_process') {
  return load('node:child_process') as typeof import('node:child_process');
}
