// The blocking netlink transport's pure parts: splitting a datagram into messages and reading an extended ack.
import { describe, expect, it } from 'vitest';
import { extendedAckMessage, splitMessages } from '../../agent/drivers/netlink-sync.js';

function header(length: number, type: number, flags: number, seq: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  return h;
}

/** An NLMSG_ERROR payload: errno, the request's header (+ its payload unless capped), then a MSG attribute. */
function errorPayload(errno: number, text: string | null, options: { capped: boolean; requestPayload: number }): Buffer {
  const parts: Buffer[] = [];
  const err = Buffer.alloc(4);
  err.writeInt32LE(-errno, 0);
  parts.push(err, header(16 + options.requestPayload, 16, 5, 7));
  // The kernel copies the request and starts the attributes at the next 4-byte boundary.
  if (!options.capped) parts.push(Buffer.alloc(options.requestPayload, 0xaa), Buffer.alloc((4 - (options.requestPayload % 4)) % 4));
  if (text !== null) {
    const value = Buffer.from(`${text}\0`);
    const attr = Buffer.alloc(4 + value.length + ((4 - (value.length % 4)) % 4));
    attr.writeUInt16LE(4 + value.length, 0);
    attr.writeUInt16LE(1, 2);
    value.copy(attr, 4);
    parts.push(attr);
  }
  return Buffer.concat(parts);
}

describe('netlink-sync parsing', () => {
  it('splits a datagram into aligned messages', () => {
    const first = Buffer.concat([header(21, 16, 2, 9), Buffer.from([1, 2, 3, 4, 5]), Buffer.alloc(3)]);
    const second = header(16, 3, 2, 9);
    const messages = splitMessages(Buffer.concat([first, second]));
    expect(messages.map((m) => [m.type, m.flags, m.seq, m.data.length])).toEqual([
      [16, 2, 9, 5],
      [3, 2, 9, 0],
    ]);
  });

  it('refuses a message whose length runs past the datagram', () => {
    expect(() => splitMessages(header(40, 16, 0, 1))).toThrow(/malformed reply/);
  });

  it.each([
    { capped: true, requestPayload: 32 },
    { capped: false, requestPayload: 32 },
    { capped: false, requestPayload: 6 },
  ])('reads the kernel message of an error reply (capped: $capped, request payload $requestPayload bytes)', (options) => {
    const data = errorPayload(22, 'mtu greater than device maximum', options);
    const flags = 0x200 | (options.capped ? 0x100 : 0);
    expect(extendedAckMessage({ type: 2, flags, seq: 7, port: 0, data })).toBe('mtu greater than device maximum');
  });

  it('has no message without ACK_TLVS, without the attribute, or with a truncated attribute', () => {
    const options = { capped: true, requestPayload: 0 };
    expect(extendedAckMessage({ type: 2, flags: 0x100, seq: 1, port: 0, data: errorPayload(22, 'ignored', options) })).toBeNull();
    expect(extendedAckMessage({ type: 2, flags: 0x300, seq: 1, port: 0, data: errorPayload(22, null, options) })).toBeNull();
    const truncated = errorPayload(22, 'a long kernel message', options).subarray(0, 24);
    expect(extendedAckMessage({ type: 2, flags: 0x300, seq: 1, port: 0, data: truncated })).toBeNull();
  });
});
