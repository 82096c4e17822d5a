// Builds the plan's `dhcp` (DHCPv4) and `dhcpv6` sections: bridge address discovery and the exact option payloads KubeVirt serves.
import { PlanError } from '../agent/plan/errors.js';
import { formatCidr, ipFamily, isGlobalUnicast, networkOf, parseCidr, stripPrefix, type Cidr } from '../agent/plan/ip.js';
import type { DhcpV4Plan, DhcpV6Plan, RouterAdvertisementPlan } from '../agent/plan/plan-types.js';
import type { PodState } from '../agent/plan/pod-state.js';
import type { DhcpOptions } from '../agent/plan/vmi-types.js';
import {
  DhcpV4Option,
  DhcpV6Option,
  INFINITE_LEASE_SECONDS,
  MAX_OPTION_LENGTH,
  domainSearchEntryLength,
  encodeClasslessRoutes,
  encodeDomainSearch,
  encodeDuidLL,
  encodeIPv4List,
  encodeIPv6List,
  encodeString,
  encodeSubnetMask,
  encodeU16,
  encodeU32,
  isDefaultDestination,
  isValidSearchDomain,
  toHex,
  type ClasslessRoute,
} from '../dhcp/options.js';
import { describeDropped, dhcpV4Nameservers, parseResolvConf, searchDomainsWithDefault } from '../dhcp/resolv-conf.js';

/** Router lifetime of the (non-KubeVirt) router advertisements. */
export const RA_ROUTER_LIFETIME_SECONDS = 1800;

// ---------------------------------------------------------------------------------------------
// Bridge binding discovery (pkg/network/setup/netpod/discoverbridge.go)

export interface BridgeDhcpAddressing {
  /** The pod interface's first global-unicast IPv4, as a CIDR. */
  readonly ipv4: string;
  /** Next hop of the first IPv4 route on the interface; null when that route has none (KubeVirt then sends no option 3). */
  readonly gateway: string | null;
  /** Option 121 routes: the interface's IPv4 routes minus the one to the pod address's own network; default kept. */
  readonly routes: readonly ClasslessRoute[];
}

function isIPv6Route(dst: string, gw: string | undefined): boolean {
  if (gw !== undefined && gw !== '' && ipFamily(gw) === 6) return true;
  if (dst === 'default') return false;
  return ipFamily(stripPrefix(dst)) === 6;
}

/**
 * KubeVirt's storeBridgeBindingDHCPInterfaceData. Returns null when the interface has no global-unicast IPv4
 * (IPAM disabled: no DHCP server). Throws PlanError "no gateway address found in routes for <iface>" when the
 * interface has IPv4 but no IPv4 route.
 */
export function bridgeDhcpAddressing(pod: PodState, podInterfaceName: string, field = 'pod.routes'): BridgeDhcpAddressing | null {
  const iface = pod.interfaces.find((candidate) => candidate.name === podInterfaceName);
  if (!iface) throw new PlanError('pod.interfaces', `pod interface ${podInterfaceName} not found`);

  let address: Cidr | null = null;
  for (const text of iface.ipv4) {
    const cidr = parseCidr(text);
    if (cidr !== null && cidr.family === 4 && isGlobalUnicast(stripPrefix(text))) {
      address = cidr;
      break;
    }
  }
  if (address === null) return null;

  // filterIPv4RoutesByInterface: IPv4 routes (destination and next hop) whose next-hop interface is the pod iface.
  const linkRoutes: { dst: Cidr | 'default'; gw?: string }[] = [];
  for (const route of pod.routes) {
    if (route.dev !== podInterfaceName || isIPv6Route(route.dst, route.gw)) continue;
    let dst: Cidr | 'default' = 'default';
    if (!isDefaultDestination(route.dst)) {
      const cidr = parseCidr(route.dst);
      if (cidr === null) throw new PlanError(field, `invalid route destination "${route.dst}" on ${podInterfaceName}`);
      dst = cidr;
    }
    const gw = route.gw === undefined || route.gw === '' ? undefined : route.gw;
    if (gw !== undefined && ipFamily(gw) !== 4) throw new PlanError(field, `invalid route gateway "${gw}" on ${podInterfaceName}`);
    linkRoutes.push(gw === undefined ? { dst } : { dst, gw });
  }
  const first = linkRoutes[0];
  if (first === undefined) throw new PlanError(field, `no gateway address found in routes for ${podInterfaceName}`);

  // filterRoutesByNonLocalDestination: drop only the route to exactly the pod address's own network (the kernel's
  // subnet route). Everything else stays: the default route, routes via a gateway even when they cover the pod IP
  // (OVN-Kubernetes' cluster /16), and on-link routes without a gateway (option 121 sends them with 0.0.0.0), such as
  // Calico's 169.254.1.1/32 or OpenShift SDN's 10.128.0.0/14.
  const ownNetwork = formatCidr(networkOf(address));
  const routes: ClasslessRoute[] = [];
  for (const route of linkRoutes) {
    const dst = route.dst === 'default' ? 'default' : formatCidr(networkOf(route.dst));
    if (dst === ownNetwork) continue;
    routes.push(route.gw === undefined ? { dst } : { dst, gw: route.gw });
  }

  return { ipv4: formatCidr(address), gateway: first.gw ?? null, routes };
}

// ---------------------------------------------------------------------------------------------
// DHCPv4 (pkg/network/dhcp/server/server.go prepareDHCPOptions)

export interface DhcpV4PlanInput {
  /** The bridge the server listens on. */
  readonly interface: string;
  /** Option 54: the fake bridge IP (bridge) or 10.0.2.1 (masquerade); a "/32" suffix is ignored. */
  readonly serverIdentifier: string;
  /** The only chaddr answered; null answers any (masquerade). */
  readonly clientMac: string | null;
  /** The guest address, CIDR. */
  readonly address: string;
  readonly gateway: string | null;
  /** Option 121 routes; null (or an empty list) sends no option 121. */
  readonly routes: readonly ClasslessRoute[] | null;
  readonly mtu: number;
  readonly resolvConf: string;
  readonly hostname: string;
  readonly subdomain?: string;
  readonly dhcpOptions?: DhcpOptions;
  /** Receives non-fatal notes (dropped search domains, …). */
  readonly warnings: string[];
  /** Field path of the VMI interface, for errors (default "dhcpOptions"). */
  readonly field?: string;
}

/** KubeVirt's GetDomainName: the first longest entry. */
export function longestDomain(domains: readonly string[]): string {
  let selected = '';
  for (const domain of domains) if (domain.length > selected.length) selected = domain;
  return selected;
}

/** KubeVirt's DomainNameWithSubdomain: "<subdomain>.<longest *.svc.* domain>", or "" when nothing is to be added. */
export function domainNameWithSubdomain(searchDomains: readonly string[], subdomain: string | undefined): string {
  if (!subdomain) return '';
  const domain = longestDomain(searchDomains.filter((d) => d.includes('.svc.')));
  if (domain !== '' && !domain.startsWith(`${subdomain}.`)) return `${subdomain}.${domain}`;
  return '';
}

/**
 * The search list KubeVirt sends: resolv.conf search domains (valid, lower-cased; "cluster.local" when none),
 * with the subdomain domain prepended. Invalid domains are dropped with a warning (KubeVirt failed instead).
 */
export function dhcpSearchDomains(resolvConf: string, subdomain: string | undefined, warnings: string[], prefix = 'dhcp'): string[] {
  const conf = parseResolvConf(resolvConf);
  for (const entry of conf.dropped) warnings.push(`${prefix}: ${describeDropped(entry)}`);
  const domains = searchDomainsWithDefault(conf);
  const extra = domainNameWithSubdomain(domains, subdomain);
  if (extra !== '') {
    if (isValidSearchDomain(extra)) domains.unshift(extra);
    else warnings.push(`${prefix}: subdomain search domain '${extra}' dropped: Search domain is not valid`);
  }
  return domains;
}

export function buildDhcpV4Plan(input: DhcpV4PlanInput): DhcpV4Plan {
  const field = input.field ?? 'dhcpOptions';
  const prefix = `dhcp ${input.interface}`;
  const address = parseCidr(input.address);
  if (address === null || address.family !== 4) throw new PlanError(field, `DHCPv4 address "${input.address}" is not an IPv4 CIDR`);
  const serverIdentifier = stripPrefix(input.serverIdentifier);
  if (ipFamily(serverIdentifier) !== 4) throw new PlanError(field, `DHCP server identifier "${input.serverIdentifier}" is not an IPv4 address`);
  const gateway = input.gateway === null || input.gateway === '' ? null : stripPrefix(input.gateway);
  if (gateway !== null && ipFamily(gateway) !== 4) throw new PlanError(field, `DHCP gateway "${input.gateway}" is not an IPv4 address`);
  if (!Number.isInteger(input.mtu) || input.mtu < 68 || input.mtu > 0xffff) throw new PlanError(field, `MTU ${input.mtu} cannot be sent in option 26`);

  const options = new Map<number, Buffer>();
  const putString = (code: number, value: string, what: string): void => {
    const bytes = encodeString(value);
    if (bytes.length > MAX_OPTION_LENGTH) {
      input.warnings.push(`${prefix}: ${what} is ${bytes.length} bytes, longer than a DHCP option (255); option ${code} not sent`);
      return;
    }
    options.set(code, bytes);
  };

  options.set(DhcpV4Option.SubnetMask, encodeSubnetMask(address.prefixLength));
  if (gateway !== null) options.set(DhcpV4Option.Router, encodeIPv4List([gateway]));

  // Option 6: IPv4 nameservers; 8.8.8.8 only when resolv.conf has no nameserver at all. KubeVirt sends an
  // empty option 6 when there are only IPv6 nameservers; an empty option is invalid, so it is left out.
  const nameservers = dhcpV4Nameservers(parseResolvConf(input.resolvConf));
  if (nameservers.length > 0) options.set(DhcpV4Option.DomainNameServer, encodeIPv4List(nameservers.slice(0, MAX_OPTION_LENGTH >> 2)));

  if (input.hostname !== '') putString(DhcpV4Option.HostName, input.hostname, 'hostname');

  const searchDomains = dhcpSearchDomains(input.resolvConf, input.subdomain, input.warnings, prefix);
  // Option 15 (for Windows): the longest search domain.
  const domainName = longestDomain(searchDomains);
  if (domainName !== '') putString(DhcpV4Option.DomainName, domainName, 'domain name');

  options.set(DhcpV4Option.InterfaceMtu, encodeU16(input.mtu));

  // Option 119: KubeVirt fails above 255 bytes; the agent keeps the leading domains that fit and warns.
  const fitting: string[] = [];
  let size = 0;
  for (const [index, domain] of searchDomains.entries()) {
    const length = domainSearchEntryLength(domain);
    if (size + length > MAX_OPTION_LENGTH) {
      const rest = searchDomains.slice(index);
      input.warnings.push(
        `${prefix}: Search domains length exceeded allowable size (255 bytes); dropped ${rest.map((d) => `'${d}'`).join(', ')}`,
      );
      break;
    }
    fitting.push(domain);
    size += length;
  }
  if (fitting.length > 0) options.set(DhcpV4Option.DomainSearch, encodeDomainSearch(fitting));

  const routes = encodeClasslessRoutes(input.routes);
  if (routes.length > MAX_OPTION_LENGTH) throw new PlanError(field, `classless static routes need ${routes.length} bytes, more than a DHCP option (255)`);
  if (routes.length > 0) options.set(DhcpV4Option.ClasslessStaticRoute, routes);

  options.set(DhcpV4Option.LeaseTime, encodeU32(INFINITE_LEASE_SECONDS));
  options.set(DhcpV4Option.ServerIdentifier, encodeIPv4List([serverIdentifier]));

  const custom = input.dhcpOptions;
  if (custom) {
    if (custom.tftpServerName) putString(DhcpV4Option.TftpServerName, custom.tftpServerName, 'tftpServerName');
    if (custom.bootFileName) putString(DhcpV4Option.BootFileName, custom.bootFileName, 'bootFileName');
    if (custom.ntpServers && custom.ntpServers.length > 0) {
      const servers: string[] = [];
      custom.ntpServers.forEach((server, index) => {
        if (ipFamily(server) !== 4) throw new PlanError(`${field}.ntpServers[${index}]`, `Could not parse NTP server as IPv4 address: ${server}`);
        servers.push(server);
      });
      options.set(DhcpV4Option.NtpServers, encodeIPv4List(servers.slice(0, MAX_OPTION_LENGTH >> 2)));
    }
    for (const privateOption of custom.privateOptions ?? []) {
      // KubeVirt silently ignores codes outside 224–254 (the webhook rejects them); a later duplicate wins.
      if (Number.isInteger(privateOption.option) && privateOption.option >= 224 && privateOption.option <= 254) {
        putString(privateOption.option, privateOption.value, `private option ${privateOption.option}`);
      }
    }
  }

  const hexOptions: Record<string, string> = {};
  for (const code of [...options.keys()].sort((a, b) => a - b)) hexOptions[String(code)] = toHex(options.get(code) ?? Buffer.alloc(0));

  return {
    interface: input.interface,
    serverIdentifier,
    clientMac: input.clientMac === null ? null : input.clientMac.toLowerCase(),
    yiaddr: stripPrefix(formatCidr(address)),
    prefixLength: address.prefixLength,
    leaseSeconds: INFINITE_LEASE_SECONDS,
    options: hexOptions,
  };
}

// ---------------------------------------------------------------------------------------------
// DHCPv6 (pkg/network/dhcp/serverv6/serverv6.go) and router advertisements

export interface DhcpV6PlanInput {
  readonly interface: string;
  /** The bridge MAC: the server DUID-LL. */
  readonly bridgeMac: string;
  readonly clientMac: string | null;
  /** The guest IPv6 address, CIDR. */
  readonly address: string;
  /** The IPv6 gateway (the bridge's address); the RA source is derived from the bridge MAC, so it is only checked. */
  readonly gateway: string;
  readonly resolvConf: string;
  readonly mtu: number;
  readonly routerAdvertisements: boolean;
  /** spec.subdomain: prepended to the option 24 search list as for DHCPv4 option 119. */
  readonly subdomain?: string;
  /** Receives dropped-search-domain notes (the DHCPv4 plan already reports them in dual stack). */
  readonly warnings?: string[];
}

export function buildDhcpV6Plan(input: DhcpV6PlanInput): DhcpV6Plan {
  const field = 'dhcpv6';
  const address = parseCidr(input.address);
  if (address === null || address.family !== 6) throw new PlanError(field, `DHCPv6 address "${input.address}" is not an IPv6 CIDR`);
  if (ipFamily(stripPrefix(input.gateway)) !== 6) throw new PlanError(field, `DHCPv6 gateway "${input.gateway}" is not an IPv6 address`);
  let duid: Buffer;
  try {
    duid = encodeDuidLL(input.bridgeMac);
  } catch (error) {
    throw new PlanError(field, error instanceof Error ? error.message : String(error));
  }

  const dns = [...parseResolvConf(input.resolvConf).nameservers6];
  const options: Record<string, string> = {};
  if (dns.length > 0) options[String(DhcpV6Option.DnsServers)] = toHex(encodeIPv6List(dns));
  // Option 24 (RFC 3646; beyond KubeVirt, whose IPv6-only guests get no search list, issue #7184): the same list as
  // DHCPv4 option 119, in the same RFC 1035 form, kept to the leading domains that fit 255 bytes like option 119.
  const searchDomains = dhcpSearchDomains(input.resolvConf, input.subdomain, input.warnings ?? [], `dhcpv6 ${input.interface}`);
  const fitting: string[] = [];
  let searchSize = 0;
  for (const domain of searchDomains) {
    const length = domainSearchEntryLength(domain);
    if (searchSize + length > MAX_OPTION_LENGTH) break;
    fitting.push(domain);
    searchSize += length;
  }
  if (fitting.length > 0) options[String(DhcpV6Option.DomainList)] = toHex(encodeDomainSearch(fitting));

  const ra: RouterAdvertisementPlan | null = input.routerAdvertisements
    ? {
        prefix: formatCidr(networkOf(address)),
        routerLifetimeSeconds: RA_ROUTER_LIFETIME_SECONDS,
        mtu: input.mtu,
        dns,
        managed: true,
        other: true,
      }
    : null;

  return {
    interface: input.interface,
    serverDuid: toHex(duid),
    clientMac: input.clientMac === null ? null : input.clientMac.toLowerCase(),
    address: stripPrefix(formatCidr(address)),
    prefixLength: address.prefixLength,
    preferredLifetime: INFINITE_LEASE_SECONDS,
    validLifetime: INFINITE_LEASE_SECONDS,
    dns,
    options,
    ra,
  };
}
