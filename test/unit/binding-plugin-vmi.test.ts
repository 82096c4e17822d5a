// The binding-plugin role's VMI rewrite (pure): the CNI's one-network VMI and the sidecar's plugin-interfaces-only VMI.
import { describe, expect, it } from 'vitest';
import { bindingPluginVmi } from '../../agent/cni/binding-plugin-vmi.js';
import { CniSpecError } from '../../agent/cni/errors.js';
import { isMigrationTargetPod, pluginInterfacesAsMasquerade } from '../../agent/plan/binding-plugin.js';

const VMI = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'vm1', namespace: 'ns1', uid: 'u1', annotations: { a: 'b' } },
  spec: {
    hostname: 'vm1-host',
    domain: { cpu: { cores: 1 }, devices: { disks: [{ name: 'd' }], interfaces: [{ name: 'default', binding: { name: 'vna' }, ports: [{ port: 22 }], macAddress: '02:00:00:00:00:01' }, { name: 'blue', bridge: {} }] } },
    networks: [{ name: 'default', pod: {} }, { name: 'blue', multus: { networkName: 'blue-net' } }],
  },
  status: { runtimeUser: 107, interfaces: [{ name: 'default', mac: '02:00:00:00:00:01' }, { name: 'blue', mac: '02:00:00:00:00:02' }], migrationState: { targetPod: 'virt-launcher-vm1-bbbbb' } },
};

describe('bindingPluginVmi (CNI role 2)', () => {
  it('keeps the logic network only, as masquerade with the user fields; uid = the attachment key; other spec fields stay', () => {
    const { vmi, phase } = bindingPluginVmi(VMI, 'default', 'key-1', 'virt-launcher-vm1-aaaaa');
    expect(phase).toBe('start');
    expect(vmi).toMatchObject({
      metadata: { name: 'vm1', namespace: 'ns1', uid: 'key-1', annotations: { a: 'b' } },
      spec: { hostname: 'vm1-host', domain: { cpu: { cores: 1 }, devices: { disks: [{ name: 'd' }], interfaces: [{ name: 'default', masquerade: {}, ports: [{ port: 22 }], macAddress: '02:00:00:00:00:01' }] } }, networks: [{ name: 'default', pod: {} }] },
      status: { runtimeUser: 107, interfaces: [{ name: 'default', mac: '02:00:00:00:00:01' }] },
    });
    expect(JSON.stringify(vmi)).not.toContain('"binding"');
  });

  it('migration-target when the VMI migrates into this pod; not when it completed or for another pod', () => {
    expect(bindingPluginVmi(VMI, 'default', 'k', 'virt-launcher-vm1-bbbbb').phase).toBe('migration-target');
    const done = { ...VMI, status: { ...VMI.status, migrationState: { targetPod: 'virt-launcher-vm1-bbbbb', completed: true } } };
    expect(bindingPluginVmi(done, 'default', 'k', 'virt-launcher-vm1-bbbbb').phase).toBe('start');
    expect(isMigrationTargetPod(VMI, undefined)).toBe(false);
  });

  it('without a VMI: the network alone, masquerade, no ports, the launcher user', () => {
    expect(bindingPluginVmi(null, 'net-a', 'k2', undefined).vmi).toMatchObject({
      metadata: { uid: 'k2' },
      spec: { domain: { devices: { interfaces: [{ name: 'net-a', masquerade: {} }] } }, networks: [{ name: 'net-a', pod: {} }] },
      status: { runtimeUser: 107 },
    });
  });

  it('names the field: an unknown network, a network that is not the pod network', () => {
    expect(() => bindingPluginVmi(VMI, 'red', 'k', undefined)).toThrow(/^args\.cni\.logicNetworkName: VMI ns1\/vm1 has no network "red"/);
    expect(() => bindingPluginVmi(VMI, 'blue', 'k', undefined)).toThrow(CniSpecError);
    expect(() => bindingPluginVmi(VMI, 'blue', 'k', undefined)).toThrow(/is not the pod network/);
  });
});

describe('pluginInterfacesAsMasquerade (sidecar)', () => {
  it('keeps only the interfaces bound to the plugin, their networks and status entries', () => {
    const ours = pluginInterfacesAsMasquerade(VMI, 'vna');
    expect(ours).toMatchObject({
      metadata: { uid: 'u1' },
      spec: { domain: { devices: { interfaces: [{ name: 'default', masquerade: {} }] } }, networks: [{ name: 'default', pod: {} }] },
      status: { interfaces: [{ name: 'default' }] },
    });
    expect((ours as { spec: { domain: { devices: { interfaces: unknown[] } } } }).spec.domain.devices.interfaces).toHaveLength(1);
  });

  it('null when no interface uses the plugin (the domain is left as it is)', () => {
    expect(pluginInterfacesAsMasquerade(VMI, 'other-plugin')).toBeNull();
  });
});
