// MAC addresses: Go's net.ParseMAC acceptance, the canonical lower-case colon form, and MACs derived from a seed.
import { nodeCrypto } from './lazy-builtins.js';

function hexByte(text: string): number | null {
  return /^[0-9a-fA-F]{2}$/.test(text) ? parseInt(text, 16) : null;
}

/**
 * Go's net.ParseMAC: 6, 8 or 20 bytes written as `aa:bb:…`, `aa-bb-…` (one separator throughout) or
 * `aabb.ccdd.eeff`. Returns the bytes, or null when Go would fail.
 */
export function parseGoMac(s: string): number[] | null {
  if (s.length < 14) return null;
  const bytes: number[] = [];
  if (s[2] === ':' || s[2] === '-') {
    if ((s.length + 1) % 3 !== 0) return null;
    const n = (s.length + 1) / 3;
    if (n !== 6 && n !== 8 && n !== 20) return null;
    for (let i = 0, x = 0; i < n; i++, x += 3) {
      if (s.length - x > 2 && s[x + 2] !== s[2]) return null;
      const b = hexByte(s.slice(x, x + 2));
      if (b === null) return null;
      bytes.push(b);
    }
    return bytes;
  }
  if (s[4] === '.') {
    if ((s.length + 1) % 5 !== 0) return null;
    const n = (2 * (s.length + 1)) / 5;
    if (n !== 6 && n !== 8 && n !== 20) return null;
    for (let x = 0; bytes.length < n; x += 5) {
      if (s.length - (x + 2) > 2 && s[x + 4] !== '.') return null;
      const hi = hexByte(s.slice(x, x + 2));
      const lo = hexByte(s.slice(x + 2, x + 4));
      if (hi === null || lo === null) return null;
      bytes.push(hi, lo);
    }
    return bytes;
  }
  return null;
}

/** Bytes → `aa:bb:cc:dd:ee:ff`. */
export function formatMac(bytes: readonly number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Any Go-accepted 6-byte MAC spelling (surrounding blanks ignored) → lower-case colon form; null otherwise. */
export function normalizeMac(text: string): string | null {
  const bytes = parseGoMac(text.trim());
  return bytes !== null && bytes.length === 6 ? formatMac(bytes) : null;
}

/** A locally administered unicast MAC from sha256(seed): the same seed always gives the same MAC. */
export function macFromSeed(seed: string): string {
  const bytes = [...nodeCrypto().createHash('sha256').update(seed).digest().subarray(0, 6)];
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02;
  return formatMac(bytes);
}
