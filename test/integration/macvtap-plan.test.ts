// A macvtap secondary as macvtap-cni leaves it (a macvtap on a node veth, moved into the pod): discover → plan gives <interface type='ethernet'> targeting it with its MAC and MTU, accepted by libvirt's parser.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Plan } from '../../agent/plan/plan-types.js';
import { hashedPodInterfaceName } from '../../agent/plan/names.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { closeLibvirt, defineWithLibvirt, wrapInDomain } from '../helpers/libvirt-check.js';
import { netnsAvailable } from '../helpers/netns.js';

const CLI = join(process.cwd(), 'dist/agent/cli/cli.js');
const VMI = `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-macvtap, namespace: default, uid: u-mvt}
spec:
  domain:
    devices:
      interfaces:
      - {name: default, masquerade: {}}
      - {name: macvtapnet, binding: {name: macvtap}}
  networks:
  - {name: default, pod: {}}
  - {name: macvtapnet, multus: {networkName: macvtapnet}}
`;
const CONFIG = { network: { binding: { macvtap: { domainAttachmentType: 'tap' } } } };

function cli(args: readonly string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!netnsAvailable())('macvtap secondary (binding plugin, domainAttachmentType tap)', () => {
  let cni: CniPod | undefined;
  afterEach(async () => {
    await cni?.cleanup();
    await closeLibvirt();
  }, 120_000);

  it('discover → plan: ethernet interface on the macvtap with its MAC and MTU', async () => {
    cni = await makeCniPod({ podCidr: '10.244.34.0/24' });
    const name = hashedPodInterfaceName('macvtapnet');
    // Node side: a veth as the lower device; the macvtap is made on it and moved into the pod, as macvtap-cni does.
    await cni.node.execOk(['ip', 'link', 'add', 'mvlow', 'type', 'veth', 'peer', 'name', 'mvpeer']);
    await cni.node.execOk(['ip', 'link', 'set', 'mvlow', 'up']);
    await cni.node.execOk(['ip', 'link', 'add', 'link', 'mvlow', 'name', name, 'address', '02:6b:1e:4c:00:0a', 'mtu', '1400', 'type', 'macvtap', 'mode', 'bridge']);
    await cni.node.execOk(['ip', 'link', 'set', name, 'netns', cni.pod.name]);
    await cni.pod.execOk(['ip', 'link', 'set', name, 'up']);

    const discovered = cli(['discover', '--netns', cni.pod.path, '--resolv-conf', '/dev/null', '--network-status', '/nonexistent', '--network-info', '/nonexistent']);
    expect(discovered.stderr).toBe('');
    const pod = JSON.parse(discovered.stdout) as { interfaces: { name: string; kind: string }[] };
    expect(pod.interfaces.find((i) => i.name === name)?.kind).toBe('macvtap');

    const vmiJson = JSON.stringify(parseYaml(VMI));
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'vna-mvt-'));
    try {
      writeFileSync(join(dir, 'vmi.json'), vmiJson);
      writeFileSync(join(dir, 'kv.json'), JSON.stringify(CONFIG));
      const planned = cli(['plan', '--vmi', join(dir, 'vmi.json'), '--kubevirt-config', join(dir, 'kv.json'), '--pod', '-', '--arch', 'amd64'], discovered.stdout);
      expect(planned.stderr).toBe('');
      const plan = JSON.parse(planned.stdout) as Plan;
      const net = plan.networks.find((n) => n.name === 'macvtapnet');
      expect(net).toMatchObject({ binding: 'plugin', tap: name, guestMac: '02:6b:1e:4c:00:0a', links: [], dhcp: null });
      const xml = plan.domain.interfaces.find((x) => x.includes('ua-macvtapnet'));
      expect(xml).toBe(
        `<interface type="ethernet"><source/><target dev="${name}" managed="no"/><model type="virtio-non-transitional"/>` +
          '<mac address="02:6b:1e:4c:00:0a"/><mtu size="1400"/><alias name="ua-macvtapnet"/><rom enabled="no"/></interface>',
      );
      const defined = await defineWithLibvirt(wrapInDomain({ interfaces: [xml ?? ''], hostdevs: [], memoryBacking: null }));
      expect(defined.error).toBeUndefined();
      expect(defined.xml).toContain(`<target dev='${name}' managed='no'/>`);
      expect(defined.xml).toContain("<mtu size='1400'/>");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
