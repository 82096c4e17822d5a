// libvirt version numbers: decoding virConnectGetLibVersion's integer, comparing and printing them. Pure.

export interface LibvirtVersion {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
}

/** 9000000 → 9.0.0 (libvirt encodes major * 1,000,000 + minor * 1,000 + micro). */
export function decodeVersion(value: number): LibvirtVersion {
  return { major: Math.floor(value / 1_000_000), minor: Math.floor((value % 1_000_000) / 1000), micro: value % 1000 };
}

export function versionAtLeast(v: LibvirtVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

export function formatVersion(v: LibvirtVersion): string {
  return `${v.major}.${v.minor}.${v.micro}`;
}
