// Attachment folder names: one per (network, container id, interface), never shared (issue 26 item 8: network a_b + container c was network a + container b_c).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attachmentKey, legacyAttachmentKey } from '../../agent/cni/attachment.js';

/** Undoes attachmentKey's spelled-out form: the test's own decoder, so injectivity is shown, not assumed. */
function decode(key: string): [string, string, string] | null {
  const parts = key.split('.');
  if (parts.length !== 3) return null;
  const decoded = parts.map((part) => {
    const bytes: number[] = [];
    for (let i = 0; i < part.length; ) {
      if (part[i] === '_') {
        bytes.push(parseInt(part.slice(i + 1, i + 3), 16));
        i += 3;
      } else {
        bytes.push(part.charCodeAt(i));
        i += 1;
      }
    }
    return Buffer.from(bytes).toString('utf8');
  });
  return decoded as [string, string, string];
}

describe('attachment keys', () => {
  it('network a_b + container c and network a + container b_c get different folders (the legacy key gave both a_b_c_eth0)', () => {
    expect(legacyAttachmentKey('a_b', 'c', 'eth0')).toBe(legacyAttachmentKey('a', 'b_c', 'eth0'));
    expect(attachmentKey('a_b', 'c', 'eth0')).not.toBe(attachmentKey('a', 'b_c', 'eth0'));
    expect(attachmentKey('a_b', 'c', 'eth0')).toBe('a_5fb.c.eth0');
    expect(attachmentKey('a.b', 'c', 'eth0')).not.toBe(attachmentKey('a', 'b.c', 'eth0'));
  });

  it('a spelled-out key decodes back to its three parts, and keys are folder names (no slash, not . or ..)', () => {
    const part = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(part, part, part, (network, containerId, ifname) => {
        const key = attachmentKey(network, containerId, ifname);
        expect(key).toMatch(/^[A-Za-z0-9._-]+$/);
        expect(key.length).toBeLessThanOrEqual(200);
        if (!key.startsWith('h.')) expect(decode(key)).toEqual([network, containerId, ifname].map((s) => Buffer.from(s, 'utf8').toString('utf8')));
      }),
      { numRuns: 2000 },
    );
  });

  it('distinct attachments never share a key, including the hashed long form', () => {
    const part = fc.stringMatching(/^[A-Za-z0-9_.-]{1,120}$/);
    fc.assert(
      fc.property(fc.tuple(part, part, part), fc.tuple(part, part, part), (a, b) => {
        fc.pre(a.join('\0') !== b.join('\0'));
        expect(attachmentKey(...a)).not.toBe(attachmentKey(...b));
      }),
      { numRuns: 2000 },
    );
    const long = 'n'.repeat(250);
    expect(attachmentKey(long, 'c', 'eth0')).toMatch(/^h\.[0-9a-f]{64}$/);
    expect(attachmentKey(long, 'c', 'eth0')).not.toBe(attachmentKey(long, 'c', 'eth1'));
  });
});
