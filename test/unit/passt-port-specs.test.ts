// The VMI's passt port forwards as passt -t/-u arguments, through the same rules as the core binding's <portForward>.
import { describe, expect, it } from 'vitest';
import { passtPortForwards } from '../../bindings/passt.js';
import { passtPortArgs } from '../../agent/passt/port-specs.js';
import type { VmiInterface } from '../../agent/plan/vmi-types.js';

const iface = (ports?: VmiInterface['ports']): VmiInterface => ({ name: 'default', passtBinding: {}, ...(ports ? { ports } : {}) }) as VmiInterface;

describe('passtPortArgs', () => {
  it.each([
    ['no ports: every tcp and udp port', iface(), false, ['-t', 'all', '-u', 'all']],
    ['listed ports, protocol case-insensitive, empty means tcp', iface([{ port: 22 }, { port: 80, protocol: 'TCP' }, { port: 53, protocol: 'udp' }]), false, ['-t', '22,80', '-u', '53']],
    ['udp only', iface([{ port: 5353, protocol: 'UDP' }]), false, ['-u', '5353']],
    [
      'istio, no ports: every tcp port except Envoy\'s, no udp',
      iface(),
      true,
      ['-t', '~15000,~15001,~15004,~15006,~15008,~15009,~15020,~15021,~15053,~15090'],
    ],
    ['istio with ports: Envoy excludes, then the listed ports', iface([{ port: 8080 }]), true, ['-t', '~15000,~15001,~15004,~15006,~15008,~15009,~15020,~15021,~15053,~15090,8080']],
  ] as const)('%s', (_name, i, istio, expected) => {
    expect(passtPortArgs(passtPortForwards(i, istio))).toEqual(expected);
  });

  it('ranges become N-M', () => {
    expect(passtPortArgs([{ proto: 'tcp', ranges: [{ start: 1000, end: 1010 }, { start: 22 }] }])).toEqual(['-t', '1000-1010,22']);
  });
});
