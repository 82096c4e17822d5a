// Parses the pod's resolv.conf the way KubeVirt's pkg/network/dns/resolveconf.go does, dropping invalid entries instead of failing.
import { bigIntToIp, ipFamily, ipToBigInt } from '../agent/plan/ip.js';
import { ERROR_SEARCH_DOMAIN_NOT_VALID, isValidSearchDomain } from './options.js';

/** KubeVirt's defaults (resolveconf.go). */
export const DEFAULT_NAMESERVER = '8.8.8.8';
export const DEFAULT_SEARCH_DOMAIN = 'cluster.local';

export interface DroppedResolvEntry {
  /** 1-based line number in resolv.conf. */
  readonly line: number;
  readonly keyword: 'nameserver' | 'search';
  readonly value: string;
  readonly reason: string;
}

export interface ResolvConf {
  /** IPv4 nameservers in file order (IPv4-mapped IPv6 counts as IPv4, as Go's To4 does). No default applied. */
  readonly nameservers4: readonly string[];
  readonly nameservers6: readonly string[];
  /** Valid search domains, lower-cased, in file order (all `search` lines concatenated, as KubeVirt does). No default applied. */
  readonly searchDomains: readonly string[];
  /** True when the file has no search domain at all (valid or not): KubeVirt then uses "cluster.local". */
  readonly noSearchLine: boolean;
  readonly dropped: readonly DroppedResolvEntry[];
}

/** Keyword at the very start of the line, followed by whitespace or end of line (no leading blanks, as KubeVirt/glibc). */
function keywordOf(line: string): 'nameserver' | 'search' | null {
  const match = /^(nameserver|search)(?:[ \t]|$)/.exec(line);
  return match ? (match[1] as 'nameserver' | 'search') : null;
}

function normalizeNameserver(text: string): { family: 4 | 6; ip: string } | null {
  const family = ipFamily(text);
  if (family === null) return null;
  const value = ipToBigInt(text);
  if (family === 6 && value >> 32n === 0xffffn) return { family: 4, ip: bigIntToIp(value & 0xffff_ffffn, 4) };
  return { family, ip: bigIntToIp(value, family) };
}

export function parseResolvConf(text: string): ResolvConf {
  const nameservers4: string[] = [];
  const nameservers6: string[] = [];
  const searchDomains: string[] = [];
  const dropped: DroppedResolvEntry[] = [];
  let searchTokens = 0;

  text.split('\n').forEach((rawLine, index) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const keyword = keywordOf(line);
    if (keyword === null) return;
    const fields = line.split(/\s+/).filter((f) => f !== '');
    if (keyword === 'nameserver') {
      if (fields.length !== 2) {
        dropped.push({
          line: index + 1,
          keyword,
          value: fields.slice(1).join(' '),
          reason: 'nameserver line should have only one value per line',
        });
        return;
      }
      const value = fields[1] ?? '';
      const parsed = normalizeNameserver(value);
      if (parsed === null) {
        dropped.push({ line: index + 1, keyword, value, reason: 'not an IP address' });
        return;
      }
      (parsed.family === 4 ? nameservers4 : nameservers6).push(parsed.ip);
      return;
    }
    for (const token of fields.slice(1)) {
      searchTokens++;
      // Domain names are case-insensitive, but Kubernetes only allows lower case.
      const domain = token.toLowerCase();
      if (isValidSearchDomain(domain)) searchDomains.push(domain);
      else dropped.push({ line: index + 1, keyword, value: domain, reason: ERROR_SEARCH_DOMAIN_NOT_VALID });
    }
  });

  return { nameservers4, nameservers6, searchDomains, noSearchLine: searchTokens === 0, dropped };
}

/** Option 6 servers: the IPv4 nameservers, or 8.8.8.8 when the file has no nameserver of either family (KubeVirt). */
export function dhcpV4Nameservers(conf: ResolvConf): string[] {
  if (conf.nameservers4.length === 0 && conf.nameservers6.length === 0) return [DEFAULT_NAMESERVER];
  return [...conf.nameservers4];
}

/** Search domains with KubeVirt's "cluster.local" default when the file names none. */
export function searchDomainsWithDefault(conf: ResolvConf): string[] {
  return conf.noSearchLine ? [DEFAULT_SEARCH_DOMAIN] : [...conf.searchDomains];
}

/** One warning line per dropped entry. */
export function describeDropped(entry: DroppedResolvEntry): string {
  return `resolv.conf line ${entry.line}: ${entry.keyword} '${entry.value}' dropped: ${entry.reason}`;
}
