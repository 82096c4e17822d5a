// Reads the kernel state the reconcile step compares against (links, addresses, routes, neighbours, sysctls, our nft tables).
import type { KernelDriver } from '../drivers/kernel.js';
import type { KernelSnapshot } from './reconcile.js';
import { SPOOF_TABLE } from '../../bindings/spoof-nft.js';
import type { AgentState, NftTableFamily } from './state-dir.js';

/** /proc/sys prints multi-value sysctls with tabs ("107\t107"); the plan writes them with one space. */
export function normalizeSysctl(value: string | null): string | null {
  return value === null ? null : value.trim().split(/\s+/).join(' ');
}

/** The table of ours in each family: the shared nat tables, and the anti-spoofing table in the bridge family. */
export function ourTable(family: NftTableFamily): string {
  return family === 'bridge' ? SPOOF_TABLE : 'nat';
}

/** `nft list ruleset` without the counts that traffic changes (rules' counters, named counters' bodies), restricted to our tables of these families. */
export function ourTablesListing(ruleset: string, families: readonly NftTableFamily[]): string {
  const blocks = ruleset.split(/^(?=table )/m);
  return blocks
    .filter((block) => families.some((family) => block.startsWith(`table ${family} ${ourTable(family)} `)))
    .map((block) => block.replace(/counter packets \d+ bytes \d+/g, 'counter').replace(/^(\s*)packets \d+ bytes \d+$/gm, '$1packets bytes').trimEnd())
    .join('\n');
}

export function nftFamiliesOf(nftText: string | null): NftTableFamily[] {
  if (nftText === null) return [];
  const lines = new Set(nftText.split('\n'));
  return (['ip', 'ip6', 'bridge'] as const).filter((family) => lines.has(`add table ${family} ${ourTable(family)}`));
}

export async function takeSnapshot(
  driver: KernelDriver,
  sysctlNames: readonly string[],
  nftText: string | null,
  state: AgentState | null,
  withNeighbours = false,
): Promise<KernelSnapshot & { nftListing: string; nftRuleset: string | null }> {
  // One netlink socket answers one dump at a time: these must not run concurrently.
  const links = await driver.listLinks();
  const addresses = await driver.listAddresses();
  const routes = await driver.listRoutes();
  const neighbours = withNeighbours ? await driver.listNeighbours() : undefined;
  const sysctls: Record<string, string | null> = {};
  for (const name of sysctlNames) sysctls[name] = normalizeSysctl(driver.readSysctl(name));
  const families = nftFamiliesOf(nftText ?? state?.nft?.text ?? null);
  // One `nft list ruleset` per run at most: spawning nft is most of what setup costs.
  const nftRuleset = families.length > 0 ? await driver.nftList() : null;
  const nftListing = nftRuleset === null ? '' : ourTablesListing(nftRuleset, families);
  const recorded = state?.nft;
  const nftUpToDate =
    nftText !== null &&
    recorded?.text === nftText &&
    (recorded.listing !== null ? recorded.listing === nftListing : recorded.applied === true);
  return { links, addresses, routes, ...(neighbours ? { neighbours } : {}), sysctls, nftUpToDate, nftListing, nftRuleset };
}
