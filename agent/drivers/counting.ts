// A KernelDriver wrapper that counts every kernel write and reports each one (the apply step's write counter and crash hook).
import type { KernelDriver } from './kernel.js';

/** The methods that change the kernel. Reads (list*, supportsLinkKind, readSysctl, nftList) and close are not counted. */
export const WRITE_METHODS = [
  'createBridge',
  'createDummy',
  'createTap',
  'setLink',
  'setBridgePortLearning',
  'deleteLink',
  'deleteLinks',
  'addAddress',
  'deleteAddress',
  'addRoute',
  'deleteRoute',
  'setNeighbour',
  'writeSysctl',
  'nftApply',
] as const satisfies readonly (keyof KernelDriver)[];

export type WriteMethod = (typeof WRITE_METHODS)[number];

export interface CountingDriver extends KernelDriver {
  /** Write calls made so far (including ones that failed). */
  readonly writes: number;
}

/**
 * Every write method call increments the count when it is made; onWrite(count, method) runs after the call settles —
 * success or failure — and before its result (or error) reaches the caller. onWrite may exit the process (crash test).
 * The synchronous writeSysctl stays synchronous.
 */
export function createCountingDriver(inner: KernelDriver, onWrite: (count: number, method: WriteMethod) => void = () => undefined): CountingDriver {
  let writes = 0;

  function counted<A extends unknown[]>(method: WriteMethod, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
    return async (...args: A) => {
      const n = ++writes;
      try {
        await fn(...args);
      } finally {
        onWrite(n, method);
      }
    };
  }

  return {
    get writes() {
      return writes;
    },
    listLinks: () => inner.listLinks(),
    linkIndex: (name) => inner.linkIndex(name),
    listAddresses: () => inner.listAddresses(),
    listRoutes: () => inner.listRoutes(),
    listNeighbours: () => inner.listNeighbours(),
    supportsLinkKind: (kind) => inner.supportsLinkKind(kind),
    createBridge: counted('createBridge', (name: string, mac?: string) => inner.createBridge(name, mac)),
    createDummy: counted('createDummy', (name: string) => inner.createDummy(name)),
    createTap: counted('createTap', (name: string, options: Parameters<KernelDriver['createTap']>[1]) => inner.createTap(name, options)),
    setLink: counted('setLink', (index: number, changes: Parameters<KernelDriver['setLink']>[1]) => inner.setLink(index, changes)),
    setBridgePortLearning: counted('setBridgePortLearning', (index: number, learning: boolean) => inner.setBridgePortLearning(index, learning)),
    deleteLink: counted('deleteLink', (index: number) => inner.deleteLink(index)),
    deleteLinks: counted('deleteLinks', (indices: readonly number[]) => inner.deleteLinks(indices)),
    addAddress: counted('addAddress', (index: number, cidr: string) => inner.addAddress(index, cidr)),
    deleteAddress: counted('deleteAddress', (index: number, cidr: string) => inner.deleteAddress(index, cidr)),
    addRoute: counted('addRoute', (route: Parameters<KernelDriver['addRoute']>[0]) => inner.addRoute(route)),
    deleteRoute: counted('deleteRoute', (route: Parameters<KernelDriver['deleteRoute']>[0]) => inner.deleteRoute(route)),
    setNeighbour: counted('setNeighbour', (index: number, ip: string, mac: string) => inner.setNeighbour(index, ip, mac)),
    readSysctl: (name) => inner.readSysctl(name),
    writeSysctl(name, value) {
      const n = ++writes;
      try {
        inner.writeSysctl(name, value);
      } finally {
        onWrite(n, 'writeSysctl');
      }
    },
    nftApply: counted('nftApply', (text: string) => inner.nftApply(text)),
    nftList: () => inner.nftList(),
    close: () => inner.close(),
  };
}
