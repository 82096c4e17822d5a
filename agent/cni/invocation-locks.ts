// Which daemon invocations may run at the same time: those for different pods; those for the same pod, and a GC with the attachments of its network, wait for each other (keyed shared/exclusive locks, first come first served).
//
// The kernel is reached only inside synchronous NetnsScope.run calls (rtnetlink sockets bound to the pod's namespace
// at open, taps, sysctls, libnftables, the nft binary's fork; see agent/drivers/netlink-driver.ts), so between two
// awaits the daemon's thread is always back in its own namespace and invocations for different pods cannot see each
// other's. What must not interleave is two invocations on the same pod (its links, nft tables, sysctls and state
// folder), and a GC with the invocations on the attachments it may tear down.
import type { CniEnvironment } from './spec.js';

type Mode = 'shared' | 'exclusive';

interface Waiter {
  readonly mode: Mode;
  readonly grant: () => void;
}

interface KeyState {
  shared: number;
  exclusive: boolean;
  readonly waiters: Waiter[];
}

/** Shared/exclusive locks by name; a key exists only while held or awaited. */
export class LockTable {
  private readonly keys = new Map<string, KeyState>();

  /** Resolves with the release function once held; requests for one key are granted in arrival order. */
  acquire(key: string, mode: Mode): Promise<() => void> {
    let state = this.keys.get(key);
    if (state === undefined) {
      state = { shared: 0, exclusive: false, waiters: [] };
      this.keys.set(key, state);
    }
    const held = state;
    return new Promise((resolve) => {
      held.waiters.push({ mode, grant: () => resolve(this.releaser(key, held, mode)) });
      this.grant(key, held);
    });
  }

  /** Keys held or awaited (tests, logs). */
  size(): number {
    return this.keys.size;
  }

  private releaser(key: string, state: KeyState, mode: Mode): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (mode === 'exclusive') state.exclusive = false;
      else state.shared--;
      this.grant(key, state);
    };
  }

  private grant(key: string, state: KeyState): void {
    for (;;) {
      const next = state.waiters[0];
      if (next === undefined) break;
      const free = next.mode === 'exclusive' ? !state.exclusive && state.shared === 0 : !state.exclusive;
      if (!free) break;
      state.waiters.shift();
      if (next.mode === 'exclusive') state.exclusive = true;
      else state.shared++;
      next.grant();
    }
    if (!state.exclusive && state.shared === 0 && state.waiters.length === 0) this.keys.delete(key);
  }
}

/** The network name of a request's configuration, if it parses; "" otherwise (the handler will refuse it). */
function networkName(stdin: string): string {
  try {
    const conf = JSON.parse(stdin) as unknown;
    return typeof conf === 'object' && conf !== null && typeof (conf as Record<string, unknown>)['name'] === 'string' ? String((conf as Record<string, unknown>)['name']) : '';
  } catch {
    return '';
  }
}

/**
 * The locks an invocation takes, in a fixed order (network, then pod) so two invocations never wait for each other
 * crosswise: ADD/DEL/CHECK hold their network shared and their pod (CNI_CONTAINERID) exclusively; GC holds its
 * network exclusively; VERSION and STATUS, and requests too malformed to name a pod, take none.
 */
export function locksFor(env: CniEnvironment, stdin: string): { readonly key: string; readonly mode: Mode }[] {
  const command = env['CNI_COMMAND'];
  if (command === 'GC') return [{ key: `network ${JSON.stringify(networkName(stdin))}`, mode: 'exclusive' }];
  if (command !== 'ADD' && command !== 'DEL' && command !== 'CHECK') return [];
  const pod = env['CNI_CONTAINERID'];
  if (pod === undefined || pod === '') return [];
  return [
    { key: `network ${JSON.stringify(networkName(stdin))}`, mode: 'shared' },
    { key: `pod ${JSON.stringify(pod)}`, mode: 'exclusive' },
  ];
}

/** Takes every lock of `locks` in order; resolves with one function releasing them all. */
export async function acquireAll(table: LockTable, locks: readonly { readonly key: string; readonly mode: Mode }[]): Promise<() => void> {
  const releases: (() => void)[] = [];
  for (const lock of locks) releases.push(await table.acquire(lock.key, lock.mode));
  return () => {
    for (const release of releases.reverse()) release();
  };
}
