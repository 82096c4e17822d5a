// The spoof guard's drops as the metrics read them (GuardDropReader over nf_tables netlink): real frames dropped by the guard the agent renders, read from its named counter; a table an older agent wrote (no named counter) still read from its rules.
import { describe, expect, it } from 'vitest';
import { renderSpoofNft } from '../../bindings/spoof-nft.js';
import { GuardDropReader } from '../../agent/metrics/cni-metrics.js';
import { netnsAvailable, withNetns, type Netns } from '../helpers/netns.js';
import { spoofFramesCommand } from '../helpers/spoof-frames.js';

const GUEST_MAC = '02:00:00:00:00:01';

/** The drops of the guard's rules as `nft list chain` prints them (the per-rule counters `explain` shows). */
async function ruleDrops(ns: Netns): Promise<number> {
  const out = (await ns.execOk(['nft', 'list', 'chain', 'bridge', 'virt_net_agent', 'guest-spoof'])).stdout;
  return [...out.matchAll(/counter packets (\d+) bytes \d+ drop/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

describe.skipIf(!netnsAvailable())('the guard drops the metrics read', () => {
  it('reads the named counter of the guard the agent renders: every dropped frame, equal to the rules\' own counters', async () => {
    await withNetns('vnadrops', async (ns) => {
      // No IPv6 on the links made here: g1's own DAD and MLD frames would be dropped too (from g1's MAC).
      await ns.execOk(['sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
      await ns.execOk(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
      await ns.execOk(['ip', 'link', 'add', 'g0', 'type', 'veth', 'peer', 'name', 'g1']);
      await ns.execOk(['ip', 'link', 'set', 'g0', 'master', 'br0']);
      for (const link of ['br0', 'g0', 'g1']) await ns.execOk(['ip', 'link', 'set', link, 'up']);
      await ns.execOk(['nft', '-f', '-'], { input: renderSpoofNft([{ network: 'default', tap: 'g0', mac: GUEST_MAC, ips: { ipv4: ['10.0.2.2'], ipv6: [] } }]) });
      const reader = new GuardDropReader();
      try {
        expect(reader.read(ns.path)).toBe(0);
        await ns.execOk(spoofFramesCommand('packet', 'g1', 3), { timeoutMs: 60_000 });
        const byRules = await ruleDrops(ns);
        expect(byRules).toBeGreaterThanOrEqual(3);
        expect(reader.read(ns.path)).toBe(byRules);
        const object = (await ns.execOk(['nft', 'list', 'counter', 'bridge', 'virt_net_agent', 'drops'])).stdout;
        expect(object).toMatch(new RegExp(`packets ${byRules} bytes`));
        // The table gone (teardown): nothing to read, not an error.
        await ns.execOk(['nft', 'delete', 'table', 'bridge', 'virt_net_agent']);
        expect(reader.read(ns.path)).toBeNull();
      } finally {
        reader.close();
      }
    });
  });

  it('reads a guard table written before the named counter existed from its drop rules (accept rules do not count)', async () => {
    await withNetns('vnadrops', async (ns) => {
      const old = [
        'add table bridge virt_net_agent',
        'add chain bridge virt_net_agent guest-spoof { type filter hook prerouting priority -200; policy accept; }',
        `add rule bridge virt_net_agent guest-spoof iifname "tap0" ether saddr != ${GUEST_MAC} counter packets 7 bytes 420 drop comment "spoof default: source MAC"`,
        'add rule bridge virt_net_agent guest-spoof iifname "tap0" ether type ip ip saddr 0.0.0.0 udp sport 68 udp dport 67 counter packets 9 bytes 540 accept',
        'add rule bridge virt_net_agent guest-spoof iifname "tap0" ether type != { arp, ip, ip6 } counter packets 4 bytes 240 drop comment "spoof default: EtherType"',
        '',
      ].join('\n');
      await ns.execOk(['nft', '-f', '-'], { input: old });
      const reader = new GuardDropReader();
      try {
        expect(reader.read(ns.path)).toBe(11);
        expect(reader.read('/run/netns/vna-no-such-namespace')).toBeNull();
      } finally {
        reader.close();
      }
    });
  });
});
