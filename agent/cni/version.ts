// CNI version negotiation: which spec versions this plugin speaks, and which one an invocation's configuration picks.
import { CNI_CODES, CniSpecError } from './errors.js';
import { SUPPORTED_CNI_VERSIONS } from './spec.js';

/** The answer to VERSION. */
export function versionAnswer(): string {
  return `${JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_CNI_VERSIONS })}\n`;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The version of this invocation: `cniVersion` when given (it must be one we speak), else the highest of
 * `cniVersions` that we speak. Anything else is error code 1 naming the field.
 */
export function negotiateVersion(cniVersion: unknown, cniVersions: unknown): string {
  if (cniVersion !== undefined) {
    if (typeof cniVersion !== 'string') throw new CniSpecError(CNI_CODES.invalidConfig, 'cniVersion', 'must be a string');
    if (!SUPPORTED_CNI_VERSIONS.includes(cniVersion)) {
      throw new CniSpecError(
        CNI_CODES.incompatibleVersion,
        'cniVersion',
        `${JSON.stringify(cniVersion)} is not supported (this plugin speaks ${SUPPORTED_CNI_VERSIONS.join(', ')})`,
      );
    }
    return cniVersion;
  }
  if (cniVersions !== undefined) {
    if (!Array.isArray(cniVersions) || !cniVersions.every((v): v is string => typeof v === 'string')) {
      throw new CniSpecError(CNI_CODES.invalidConfig, 'cniVersions', 'must be an array of strings');
    }
    const common = cniVersions.filter((v) => SUPPORTED_CNI_VERSIONS.includes(v)).sort(compareVersions);
    const best = common[common.length - 1];
    if (best === undefined) {
      throw new CniSpecError(
        CNI_CODES.incompatibleVersion,
        'cniVersions',
        `none of ${JSON.stringify(cniVersions)} is supported (this plugin speaks ${SUPPORTED_CNI_VERSIONS.join(', ')})`,
      );
    }
    return best;
  }
  throw new CniSpecError(CNI_CODES.invalidConfig, 'cniVersion', 'missing');
}

/** true for versions at or above `minimum` (e.g. GC and STATUS need 1.1.0). */
export function versionAtLeast(version: string, minimum: string): boolean {
  return compareVersions(version, minimum) >= 0;
}
