// The metrics' pure parts: the address syntax, CNI codes of answers, the guard's drop counters in nft's listing, the collection from a state root.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cniCode, createCniMetrics } from '../../agent/metrics/cni-metrics.js';
import { counterObjectPackets, droppedPacketsOfRule, encodeCounterGet, encodeRuleDump } from '../../agent/drivers/nft-counters.js';
import { parseMetricsAddress } from '../../agent/metrics/server.js';
import { parseAgentConfig } from '../../agent/cni/agent-config.js';

/** One netlink attribute (type, payload, nested flag), padded to 4 bytes, as the kernel writes them. */
function a(type: number, payload: Buffer, nested = false): Buffer {
  const out = Buffer.alloc((4 + payload.length + 3) & ~3);
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type | (nested ? 0x8000 : 0), 2);
  payload.copy(out, 4);
  return out;
}

describe('metrics', () => {
  it('parses HOST:PORT, [v6]:PORT and :PORT; anything else is an error naming the field', () => {
    expect(parseMetricsAddress('127.0.0.1:9101', '--metrics-address')).toEqual({ host: '127.0.0.1', port: 9101 });
    expect(parseMetricsAddress('[::1]:9101', '--metrics-address')).toEqual({ host: '::1', port: 9101 });
    expect(parseMetricsAddress(':9101', '--metrics-address')).toEqual({ host: '', port: 9101 });
    expect(() => parseMetricsAddress('localhost:9101', '--metrics-address')).toThrow(expect.objectContaining({ field: '--metrics-address', message: expect.stringMatching(/not an IP address|HOST:PORT/) }));
    expect(() => parseMetricsAddress('1.2.3.4:70000', '--metrics-address')).toThrow(/port must be 0-65535/);
    expect(() => parseMetricsAddress('9101', '--metrics-address')).toThrow(/HOST:PORT/);
    expect(parseAgentConfig('metricsAddress: "127.0.0.1:9101"\n', 'c.yaml').metricsAddress).toBe('127.0.0.1:9101');
    expect(parseAgentConfig('', 'c.yaml').metricsAddress).toBeNull();
    expect(() => parseAgentConfig('metricsAddress: 9101\n', 'c.yaml')).toThrow(/metricsAddress: must be HOST:PORT/);
  });

  it('labels an answer with its CNI error code (0 for success)', () => {
    expect(cniCode(0, '{"cniVersion":"1.0.0"}')).toBe(0);
    expect(cniCode(1, '{"cniVersion":"1.0.0","code":7,"msg":"x"}')).toBe(7);
    expect(cniCode(1, 'garbage')).toBe(999);
  });

  it("counts the packets of a chain's drop rules from nf_tables rule messages (accept rules and uncounted drops do not count)", () => {
    const be64 = (n: number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; };
    const be32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
    const expr = (name: string, data: Buffer): Buffer => a(1, Buffer.concat([a(1, Buffer.from(`${name}\0`)), a(2, data, true)]), true);
    const counter = (packets: number): Buffer => expr('counter', Buffer.concat([a(1, be64(packets * 60)), a(2, be64(packets))]));
    const verdict = (code: number): Buffer => expr('immediate', Buffer.concat([a(1, be32(0)), a(2, a(2, a(1, be32(code)), true), true)]));
    const rule = (...exprs: Buffer[]): Buffer => Buffer.concat([Buffer.from([7, 0, 0, 0]), a(1, Buffer.from('virt_net_agent\0')), a(4, Buffer.concat(exprs), true)]);
    expect(droppedPacketsOfRule(rule(counter(5), verdict(0)))).toBe(5); // counter drop
    expect(droppedPacketsOfRule(rule(counter(9), verdict(1)))).toBe(0); // counter accept
    expect(droppedPacketsOfRule(rule(verdict(0)))).toBe(0); // drop without a counter
    expect(encodeRuleDump(7, 'virt_net_agent', 'guest-spoof').subarray(0, 4)).toEqual(Buffer.from([7, 0, 0, 0]));
  });

  it('reads the packets of a named counter from an nf_tables object message (other object types are not counters)', () => {
    const be = (n: number, bytes: 4 | 8): Buffer => { const b = Buffer.alloc(bytes); if (bytes === 8) b.writeBigUInt64BE(BigInt(n)); else b.writeUInt32BE(n); return b; };
    const object = (objectType: number, packets: number): Buffer =>
      Buffer.concat([Buffer.from([7, 0, 0, 0]), a(1, Buffer.from('virt_net_agent\0')), a(2, Buffer.from('drops\0')), a(3, be(objectType, 4)), a(4, Buffer.concat([a(1, be(packets * 60, 8)), a(2, be(packets, 8))]), true)]);
    expect(counterObjectPackets(object(1, 42))).toBe(42);
    expect(counterObjectPackets(object(2, 42))).toBeNull(); // a quota, not a counter
    expect(counterObjectPackets(Buffer.from([7, 0, 0, 0]))).toBeNull();
    // The request names the table, the object and its type (counter = 1), in the bridge family.
    const request = encodeCounterGet(7, 'virt_net_agent', 'drops');
    expect(request.subarray(0, 4)).toEqual(Buffer.from([7, 0, 0, 0]));
    expect(request.includes(Buffer.from('virt_net_agent\0'))).toBe(true);
    expect(request.includes(Buffer.from('drops\0'))).toBe(true);
    expect(request.subarray(-4)).toEqual(be(1, 4));
  });

  it('exposes request counts and durations by command and code; attachments by binding from the state root', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vna-metrics-'));
    try {
      const m = createCniMetrics({ stateRoot: join(root, 'none'), readDrops: () => 3 });
      m.observe('ADD', 0, 0.012);
      m.observe('ADD', 7, 0.002);
      m.observe('DEL', 0, 0.02);
      const text = await m.registry.metrics();
      expect(text).toContain('virt_net_agent_cni_requests_total{command="ADD",code="0"} 1');
      expect(text).toContain('virt_net_agent_cni_requests_total{command="ADD",code="7"} 1');
      expect(text).toContain('virt_net_agent_cni_request_duration_seconds_bucket{le="0.025",command="ADD",code="0"} 1');
      expect(text).toContain('virt_net_agent_cni_request_duration_seconds_count{command="DEL",code="0"} 1');
      expect(text).toContain('# TYPE virt_net_agent_attachments gauge');
      expect(text).not.toMatch(/^virt_net_agent_attachments\{/m);
      expect(text).toContain('virt_net_agent_spoof_dropped_packets_total 0');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('DHCP and RA counters', () => {
  it('are counted per family, type and result, process-wide, and rendered as Prometheus counters', async () => {
    const { countDhcpMessage, countRouterAdvertisement, messageCounts } = await import('../../dhcp/message-counters.js');
    const { registerServingMetrics } = await import('../../agent/metrics/serving-metrics.js');
    const { Registry } = await import('prom-client');
    const before = messageCounts();
    const prior = (t: string): number => before.dhcp.find((d) => d.family === 'v4' && d.type === t && d.result === 'replied')?.count ?? 0;
    countDhcpMessage('v4', 'DHCPDISCOVER', 'replied');
    countDhcpMessage('v4', 'DHCPDISCOVER', 'replied');
    countDhcpMessage('v6', 'SOLICIT', 'ignored');
    countRouterAdvertisement();
    const registry = new Registry();
    registerServingMetrics(registry);
    const text = await registry.metrics();
    expect(text).toContain(`virt_net_agent_dhcp_messages_total{family="v4",type="DHCPDISCOVER",result="replied"} ${prior('DHCPDISCOVER') + 2}`);
    expect(text).toMatch(/virt_net_agent_dhcp_messages_total\{family="v6",type="SOLICIT",result="ignored"\} \d+/);
    expect(text).toContain(`virt_net_agent_router_advertisements_total ${before.routerAdvertisements + 1}`);
  });
});
