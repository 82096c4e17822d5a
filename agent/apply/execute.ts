// Runs kernel actions through a KernelDriver, resolving link names to ifindexes as earlier actions create/rename.
import type { KernelDriver } from '../drivers/kernel.js';
import type { KernelAction } from './kernel-actions.js';
import { ApplyError } from './reconcile.js';

export async function executeActions(driver: KernelDriver, actions: readonly KernelAction[]): Promise<void> {
  // Names → ifindexes, looked up on first use (the netlink driver asks the kernel by name: an ioctl, no dump) and kept
  // current by the actions themselves: a rename moves its entry, a deletion drops it. (A dump per created link was
  // ~200 dumps of ~200 links each with 64 networks; one dump per run still cost more than the lookups.)
  const indexes = new Map<string, number>();
  const indexOf = async (name: string): Promise<number> => {
    let index = indexes.get(name) ?? null;
    if (index === null) {
      index = await driver.linkIndex(name);
      if (index !== null) indexes.set(name, index);
    }
    if (index === null) throw new ApplyError('pod.interfaces', `link ${name} not found while applying`);
    return index;
  };

  for (const action of actions) {
    switch (action.do) {
      case 'create-bridge':
        await driver.createBridge(action.link, action.mac);
        break;
      case 'create-keeper':
        if (action.keeperKind === 'dummy') await driver.createDummy(action.link);
        else await driver.createBridge(action.link);
        break;
      case 'create-tap':
        await driver.createTap(action.link, { queues: action.queues, owner: action.owner });
        break;
      case 'set-link': {
        const index = await indexOf(action.link);
        const master = action.master === undefined ? undefined : action.master === null ? null : await indexOf(action.master);
        await driver.setLink(index, {
          ...(action.name !== undefined ? { name: action.name } : {}),
          ...(action.mac !== undefined ? { mac: action.mac } : {}),
          ...(action.mtu !== undefined ? { mtu: action.mtu } : {}),
          ...(master !== undefined ? { master } : {}),
          ...(action.up !== undefined ? { up: action.up } : {}),
        });
        if (action.name !== undefined) {
          indexes.delete(action.link);
          indexes.set(action.name, index);
        }
        break;
      }
      case 'set-learning':
        await driver.setBridgePortLearning(await indexOf(action.link), action.learning);
        break;
      case 'add-address':
        await driver.addAddress(await indexOf(action.link), action.cidr);
        break;
      case 'delete-address':
        await driver.deleteAddress(await indexOf(action.link), action.cidr);
        break;
      case 'add-route':
        await driver.addRoute({ dst: action.dst, index: await indexOf(action.link), family: action.family, ...(action.gw ? { gw: action.gw } : {}) });
        break;
      case 'set-neighbour':
        await driver.setNeighbour(await indexOf(action.link), action.ip, action.mac);
        break;
      case 'delete-link':
        await driver.deleteLink(await indexOf(action.link));
        indexes.delete(action.link);
        break;
      case 'delete-links': {
        const indices: number[] = [];
        for (const link of action.links) indices.push(await indexOf(link));
        await driver.deleteLinks(indices);
        for (const link of action.links) indexes.delete(link);
        break;
      }
      case 'write-sysctl':
        driver.writeSysctl(action.name, action.value);
        break;
      case 'apply-nft':
        await driver.nftApply(action.text);
        break;
    }
  }
}
