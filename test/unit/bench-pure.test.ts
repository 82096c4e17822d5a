// The benchmark harness's pure parts: quantiles, the rotating interleaved runner, the table, and the shell baselines generated from kernel actions.
import { describe, expect, it } from 'vitest';
import type { KernelAction } from '../../agent/apply/kernel-actions.js';
import { batchScript, ipCommand, perStepScript, processCount } from '../bench/script-baseline.js';
import { interleave, median, p90, quantile } from '../bench/stats.js';
import { renderMarkdown, renderText, skipped } from '../bench/table.js';

describe('bench stats', () => {
  it('nearest-rank quantiles', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2);
    expect(p90([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).toBe(9);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99)).toBe(10);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('interleave runs every contender once per round, rotating who goes first', async () => {
    const order: string[] = [];
    const contender = (name: string, value: number) => ({ name, run: async () => (order.push(name), value) });
    const samples = await interleave([contender('a', 1), contender('b', 2), contender('c', 3)], 3);
    expect(order).toEqual(['a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']);
    expect(samples.get('b')).toEqual([2, 2, 2]);
  });
});

describe('bench table', () => {
  it('prints ratio, target and met, and skipped rows with their reason', () => {
    const rows = [
      { what: 'x', agent: '1 ms', baseline: '2 ms', ratio: 0.5, target: '≤ 1.0×', met: true },
      skipped('y', '≤ 1.5×', 'serve is not built'),
    ];
    expect(renderMarkdown(rows)).toContain('| x | 1 ms | 2 ms | 0.50× | ≤ 1.0× | yes |');
    expect(renderMarkdown(rows)).toContain('- y: skipped: serve is not built');
    expect(renderText(rows)).toMatch(/y +- +- +- +≤ 1\.5× +skipped/);
  });
});

describe('bench shell baselines', () => {
  const actions: KernelAction[] = [
    { do: 'create-bridge', link: 'k6t-eth0', mac: '02:00:00:00:00:00' },
    { do: 'add-address', link: 'k6t-eth0', cidr: '10.0.2.1/24' },
    { do: 'set-link', link: 'k6t-eth0', up: true },
    { do: 'create-tap', link: 'tap0', queues: 1, owner: { uid: 107, gid: 107 } },
    { do: 'set-link', link: 'tap0', master: 'k6t-eth0', up: true },
    { do: 'set-learning', link: 'eth0-nic', learning: false },
    { do: 'add-route', link: 'eth0', dst: 'default', gw: 'fd00::1', family: 6 },
    { do: 'write-sysctl', name: 'net.ipv4.conf.k6t-eth0.route_localnet', value: '1' },
    { do: 'apply-nft', text: 'add table ip nat\nadd chain ip nat prerouting { type nat hook prerouting priority -100; }\n' },
  ];

  it('maps each link action to the ip command that does the same', () => {
    expect(actions.map(ipCommand)).toEqual([
      'link add k6t-eth0 address 02:00:00:00:00:00 type bridge',
      'addr add 10.0.2.1/24 dev k6t-eth0',
      'link set dev k6t-eth0 up',
      'tuntap add dev tap0 mode tap user 107 group 107',
      'link set dev tap0 master k6t-eth0 up',
      'link set dev eth0-nic type bridge_slave learning off',
      '-6 route add default via fd00::1 dev eth0',
      null,
      null,
    ]);
  });

  it('batch: one ip -batch and one nft -f; per-step: one process per step and per nft statement', () => {
    const b = batchScript(actions, '/x/links.batch', '/x/rules.nft');
    expect(b.script).toBe('set -e\nip -batch /x/links.batch\necho 1 > /proc/sys/net/ipv4/conf/k6t-eth0/route_localnet\nnft -f /x/rules.nft\n');
    expect(b.ipBatch.split('\n').filter(Boolean)).toHaveLength(7);
    expect(b.nft).toBe(actions[8]?.do === 'apply-nft' ? actions[8].text : '');
    const perStep = perStepScript(actions);
    expect(processCount(perStep)).toBe(9);
    expect(perStep).toContain("nft 'add chain ip nat prerouting { type nat hook prerouting priority -100; }'");
  });
});
