// rtnetlink message bodies: the request layouts the kernel expects and the replies as the kernel writes them.
import { describe, expect, it } from 'vitest';
import {
  decodeAddress,
  decodeAttrs,
  decodeLink,
  decodeRoute,
  encodeAddressRequest,
  encodeAttrs,
  encodeLinkRequest,
  encodeRouteRequest,
} from '../../agent/drivers/rtnl-codec.js';

const NESTED = 0x8000;

function attr(type: number, payload: Buffer): Buffer {
  return encodeAttrs([{ type, payload }]);
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value, 0);
  return b;
}

function ifinfo(index: number, flags: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  return b;
}

describe('rtnl codec', () => {
  it('encodes attributes padded to 4 bytes with the unpadded length in the header', () => {
    const bytes = encodeAttrs([
      { type: 3, payload: Buffer.from('eth0\0') },
      { type: 4, payload: u32(1500) },
    ]);
    expect(bytes.toString('hex')).toBe('09000300' + '6574683000000000' + '08000400' + 'dc050000');
    expect([...decodeAttrs(bytes).keys()]).toEqual([3, 4]);
  });

  it('a link change: ifinfomsg with IFF_UP in flags and change, then the attributes', () => {
    const body = encodeLinkRequest({ index: 7, up: true, name: 'k6t-eth0', mtu: 1400, master: 3 });
    expect(body.readInt32LE(4)).toBe(7);
    expect(body.readUInt32LE(8)).toBe(1);
    expect(body.readUInt32LE(12)).toBe(1);
    const attrs = decodeAttrs(body.subarray(16));
    expect(attrs.get(3)?.toString()).toBe('k6t-eth0\0');
    expect(attrs.get(4)?.readUInt32LE(0)).toBe(1400);
    expect(attrs.get(10)?.readUInt32LE(0)).toBe(3);
    const down = encodeLinkRequest({ index: 7, up: false });
    expect([down.readUInt32LE(8), down.readUInt32LE(12)]).toEqual([0, 1]);
    const untouched = encodeLinkRequest({ index: 7, mtu: 9000 });
    expect([untouched.readUInt32LE(8), untouched.readUInt32LE(12)]).toEqual([0, 0]);
  });

  it('bridge-port learning travels as LINKINFO → SLAVE_KIND "bridge" + SLAVE_DATA → BRPORT_LEARNING', () => {
    const info = decodeAttrs(decodeAttrs(encodeLinkRequest({ index: 9, bridgePortLearning: false }).subarray(16)).get(18) ?? Buffer.alloc(0));
    expect(info.get(4)?.toString()).toBe('bridge\0');
    expect(decodeAttrs(info.get(5) ?? Buffer.alloc(0)).get(8)).toEqual(Buffer.from([0]));
  });

  it('decodes a tun port of a bridge, with the NESTED bit the kernel sets on some nests', () => {
    const tunData = encodeAttrs([
      { type: 1, payload: u32(107) },
      { type: 2, payload: u32(107) },
      { type: 5, payload: Buffer.from([1]) },
      { type: 6, payload: Buffer.from([1]) },
      { type: 7, payload: Buffer.from([0]) },
    ]);
    const linkinfo = encodeAttrs([
      { type: 1, payload: Buffer.from('tun\0') },
      { type: 2 | NESTED, payload: tunData },
      { type: 4, payload: Buffer.from('bridge\0') },
      { type: 5 | NESTED, payload: attr(8 | NESTED, Buffer.from([0])) },
    ]);
    const body = Buffer.concat([
      ifinfo(12, 0x1043),
      attr(3, Buffer.from('tap0\0')),
      attr(1, Buffer.from([2, 0, 0, 0, 0, 1])),
      attr(4, u32(1480)),
      attr(10, u32(5)),
      attr(18 | NESTED, linkinfo),
    ]);
    expect(decodeLink(body)).toEqual({
      index: 12,
      name: 'tap0',
      kind: 'tun',
      address: Buffer.from([2, 0, 0, 0, 0, 1]),
      mtu: 1480,
      up: true,
      master: 5,
      learning: false,
      tun: { owner: 107, group: 107, multiQueue: false, persist: true, vnetHdr: true, pi: false },
    });
    expect(decodeLink(Buffer.concat([ifinfo(0, 0), attr(3, Buffer.from('x\0'))]))).toBeNull();
    expect(decodeLink(ifinfo(4, 0))).toBeNull();
  });

  it('IPv4 addresses go in IFA_LOCAL and IFA_ADDRESS, IPv6 in IFA_ADDRESS; replies prefer IFA_LOCAL for IPv4', () => {
    const v4 = encodeAddressRequest({ family: 2, prefixLength: 24, index: 3, address: Buffer.from([10, 0, 2, 1]) });
    expect(v4.subarray(0, 8).toString('hex')).toBe('0218000003000000');
    expect([...decodeAttrs(v4.subarray(8)).keys()]).toEqual([2, 1]);
    const v6 = encodeAddressRequest({ family: 10, prefixLength: 120, index: 3, address: Buffer.alloc(16, 1) });
    expect([...decodeAttrs(v6.subarray(8)).keys()]).toEqual([1]);
    const reply = Buffer.concat([Buffer.from([2, 32, 0, 0, 4, 0, 0, 0]), attr(1, Buffer.from([10, 0, 0, 1])), attr(2, Buffer.from([10, 0, 0, 2]))]);
    expect(decodeAddress(reply)).toEqual({ family: 2, prefixLength: 32, scope: 0, index: 4, address: Buffer.from([10, 0, 0, 2]) });
  });

  it('routes: rtmsg fields, RTA_TABLE beats rtm_table on decode', () => {
    const body = encodeRouteRequest({ family: 2, dstLength: 0, table: 254, protocol: 3, scope: 0, type: 1, oif: 2, gateway: Buffer.from([10, 0, 0, 1]) });
    expect(body.subarray(0, 12).toString('hex')).toBe('020000' + '00fe030001' + '00000000');
    const reply = Buffer.concat([Buffer.from([10, 64, 0, 0, 254, 2, 0, 1, 0, 0, 0, 0]), attr(15, u32(1000)), attr(1, Buffer.alloc(16)), attr(6, u32(256))]);
    expect(decodeRoute(reply)).toMatchObject({ family: 10, dstLength: 64, table: 1000, protocol: 2, scope: 0, type: 1, priority: 256, oif: null, gateway: null });
  });
});
