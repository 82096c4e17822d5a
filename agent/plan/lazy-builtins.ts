// node:crypto, loaded on first use instead of at start-up (only MAC derivation and hashed pod interface names need it).
//
// A cold `setup` of a masquerade network hashes no name and spawns no process; importing node:crypto (17 internal
// modules) statically compiled them in every run (~10 ms of a ~200 ms cold start here).
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export function nodeCrypto(): typeof import('node:crypto') {
  return load('node:crypto') as typeof import('node:crypto');
}
