// Runs the plan's libvirt device operations (attach, detach, link-state update) on a domain, and waits for a detach to finish.
import type { DomainOperation } from '../../agent/plan/plan-types.js';
import { listDomainHostdevs, listDomainInterfaces } from '../domain-xml.js';
import type { DomainHandle, LibvirtClient } from './client.js';
import { LibvirtError } from './client.js';

export interface AppliedOperation {
  readonly op: DomainOperation['op'];
  readonly network: string;
  readonly flags: readonly string[];
}

/** The `<alias name>` of a device fragment (ua-<network>, ua-sriov-<network>), or null. */
export function aliasOfFragment(xml: string): string | null {
  return /<alias\s+name=["']([^"']+)["']/.exec(xml)?.[1] ?? null;
}

/** True when the domain XML has an `<interface>` or `<hostdev>` with this alias. */
export function domainHasAlias(domainXml: string, alias: string): boolean {
  return listDomainInterfaces(domainXml).some((i) => i.alias === alias) || listDomainHostdevs(domainXml).some((h) => h.alias === alias);
}

/** Applies the operations in plan order with each one's own flags (the plan uses AFFECT_LIVE|AFFECT_CONFIG). */
export async function applyDomainOperations(
  client: LibvirtClient,
  domain: DomainHandle,
  operations: readonly DomainOperation[],
): Promise<AppliedOperation[]> {
  const applied: AppliedOperation[] = [];
  for (const operation of operations) {
    if (operation.op === 'attach') await client.attachDevice(domain, operation.xml, operation.flagsValue);
    else if (operation.op === 'detach') await client.detachDevice(domain, operation.xml, operation.flagsValue);
    else await client.updateDevice(domain, operation.xml, operation.flagsValue);
    applied.push({ op: operation.op, network: operation.network, flags: operation.flags });
  }
  return applied;
}

/**
 * A live detach only asks the guest to release the device (PCIe hot-unplug: the guest waits ~5 s after the
 * attention button, longer under TCG). Polls the live XML until the alias is gone; throws after the deadline.
 */
export async function waitForDeviceGone(client: LibvirtClient, domain: DomainHandle, alias: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const xml = await client.xmlDesc(domain);
    if (!domainHasAlias(xml, alias)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) {
      throw new LibvirtError('detach-device', `${alias} is still in the running domain after ${Math.round(timeoutMs / 1000)} s (the guest did not release it)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
