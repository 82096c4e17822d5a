// Builds the plugin's success result (SPEC.md "Success") in the negotiated version: interfaces, ips, routes, dns.
import type { ResultDns, ResultInterface, ResultIp, ResultRoute } from './prev-result.js';

export interface CniResultBody {
  readonly interfaces: readonly ResultInterface[];
  readonly ips: readonly ResultIp[];
  readonly routes: readonly ResultRoute[];
  readonly dns: ResultDns;
}

function ipFamily(address: string): '4' | '6' {
  return address.includes(':') ? '6' : '4';
}

/** The result object for `cniVersion`; 0.4.0 also carries each IP's "version" ("4"/"6"), 1.x does not. */
export function renderResult(cniVersion: string, body: CniResultBody): Record<string, unknown> {
  const ips = body.ips.map((ip) => (cniVersion === '0.4.0' ? { version: ipFamily(ip.address), ...ip } : { ...ip }));
  const result: Record<string, unknown> = { cniVersion, interfaces: body.interfaces, ips };
  if (body.routes.length > 0) result['routes'] = body.routes;
  result['dns'] = body.dns;
  return result;
}

export function resultText(cniVersion: string, body: CniResultBody): string {
  return `${JSON.stringify(renderResult(cniVersion, body))}\n`;
}

/** The result converted to another version (CHECK/DEL get prevResult in theirs; ADD answers in the configuration's). */
export function convertResult(cniVersion: string, result: Record<string, unknown>): Record<string, unknown> {
  const ips = Array.isArray(result['ips']) ? (result['ips'] as Record<string, unknown>[]) : [];
  const converted = ips.map((ip) => {
    const { version: _version, ...rest } = ip;
    return cniVersion === '0.4.0' ? { version: ipFamily(String(ip['address'])), ...rest } : rest;
  });
  return { ...result, cniVersion, ips: converted };
}
