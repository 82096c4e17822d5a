// Reads the kernel state the reconcile step compares against (links, addresses, routes, sysctls, our nft tables).
import type { KernelDriver } from './drivers/kernel.js';
import type { KernelSnapshot } from './reconcile.js';
import type { AgentState } from './state-dir.js';

/** /proc/sys prints multi-value sysctls with tabs ("107\t107"); the plan writes them with one space. */
export function normalizeSysctl(value: string | null): string | null {
  return value === null ? null : value.trim().split(/\s+/).join(' ');
}

/** `nft list ruleset` without the counters that traffic changes, restricted to our families' nat tables. */
export function natTablesListing(ruleset: string, families: readonly string[]): string {
  const blocks = ruleset.split(/^(?=table )/m);
  return blocks
    .filter((block) => families.some((family) => block.startsWith(`table ${family} nat `)))
    .map((block) => block.replace(/counter packets \d+ bytes \d+/g, 'counter').trimEnd())
    .join('\n');
}

export function nftFamiliesOf(nftText: string | null): ('ip' | 'ip6')[] {
  if (nftText === null) return [];
  const families: ('ip' | 'ip6')[] = [];
  if (/^add table ip nat$/m.test(nftText)) families.push('ip');
  if (/^add table ip6 nat$/m.test(nftText)) families.push('ip6');
  return families;
}

export async function takeSnapshot(
  driver: KernelDriver,
  sysctlNames: readonly string[],
  nftText: string | null,
  state: AgentState | null,
): Promise<KernelSnapshot & { nftListing: string }> {
  // One netlink socket answers one dump at a time: these must not run concurrently.
  const links = await driver.listLinks();
  const addresses = await driver.listAddresses();
  const routes = await driver.listRoutes();
  const sysctls: Record<string, string | null> = {};
  for (const name of sysctlNames) sysctls[name] = normalizeSysctl(driver.readSysctl(name));
  const families = nftFamiliesOf(nftText ?? state?.nft?.text ?? null);
  const nftListing = families.length > 0 ? natTablesListing(await driver.nftList(), families) : '';
  const nftUpToDate = nftText !== null && state?.nft?.text === nftText && state.nft.listing !== null && state.nft.listing === nftListing;
  return { links, addresses, routes, sysctls, nftUpToDate, nftListing };
}
