// CNI STATUS: can the plugin work on this node? /dev/net/tun, rtnetlink and nftables must answer (else code 50).
import { closeSync, openSync } from 'node:fs';
import { createNetlinkDriver } from '../drivers/netlink-driver.js';
import { CNI_CODES, CniSpecError } from './errors.js';

function probe(what: string, check: () => void): string | null {
  try {
    check();
    return null;
  } catch (error) {
    return `${what}: ${(error as Error).message}`;
  }
}

export async function cniStatus(): Promise<string> {
  const failures: string[] = [];
  const tun = probe('/dev/net/tun', () => closeSync(openSync('/dev/net/tun', 'r+')));
  if (tun) failures.push(tun);
  let driver;
  try {
    driver = createNetlinkDriver();
    await driver.listLinks();
  } catch (error) {
    failures.push(`netlink: ${(error as Error).message}`);
  }
  if (driver) {
    try {
      await driver.nftList();
    } catch (error) {
      failures.push(`nftables: ${(error as Error).message}`);
    }
    driver.close();
  }
  if (failures.length > 0) throw new CniSpecError(CNI_CODES.pluginNotAvailable, 'STATUS', `the plugin cannot plumb pods here: ${failures.join('; ')}`, failures.join('\n'));
  return '';
}
