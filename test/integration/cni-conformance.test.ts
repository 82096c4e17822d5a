// CNI spec conformance of the real plugin process (`node dist/agent/cli/cli.js cni`) chained after bridge + host-local.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpNetns } from '../helpers/agent-run.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { expectSpecError, plugin } from '../helpers/cni-plugin.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { netnsAvailable, type Netns } from '../helpers/netns.js';

describe.skipIf(!netnsAvailable())('CNI conformance: virt-net-agent chained after bridge + host-local', () => {
  let dir: string;
  let stateDir: string;
  /** The agent configuration, through VIRT_NET_AGENT_CONFIG as a runtime's environment would carry it. */
  let config: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vna-cni-conf-'));
    stateDir = join(dir, 'state');
    await mkdir(stateDir);
    config = writeAgentConfig(dir, { stateRoot: stateDir });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function conf(cni: CniPod, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { cniVersion: '1.0.0', name: 'podnet', type: 'virt-net-agent', binding: 'bridge', prevResult: cni.attachments[0]?.result, ...extra };
  }
  function env(cni: CniPod, command: string, more: Record<string, string> = {}): Record<string, string> {
    return { CNI_COMMAND: command, CNI_CONTAINERID: cni.containerId, CNI_NETNS: cni.pod.path, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', VIRT_NET_AGENT_CONFIG: config, ...more };
  }

  async function withPod(fn: (cni: CniPod) => Promise<void>): Promise<void> {
    const cni = await makeCniPod();
    try {
      await fn(cni);
    } finally {
      await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(conf(cni)));
      await cni.cleanup();
    }
  }

  it('VERSION lists 0.4.0, 1.0.0 and 1.1.0', async () => {
    await withPod(async (cni) => {
      const run = await plugin(cni.node, { CNI_COMMAND: 'VERSION' }, '');
      expect(run.code).toBe(0);
      expect(run.json).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    });
  });

  it('bridge: ADD plumbs tap0/k6t-eth0, answers the tap, the guest MAC and addressing; CHECK passes; DEL twice restores the pod exactly', async () => {
    await withPod(async (cni) => {
      const before = await dumpNetns(cni.pod);
      const podMac = cni.attachments[0]?.mac;
      const add = await plugin(cni.node, env(cni, 'ADD'), JSON.stringify(conf(cni)));
      expect(add.code, add.stdout).toBe(0);
      const result = add.json as { cniVersion: string; interfaces: { name: string; mac?: string; sandbox?: string }[]; ips: { address: string; gateway?: string; interface: number }[]; dns: object };
      expect(result.cniVersion).toBe('1.0.0');
      const names = result.interfaces.map((i) => i.name);
      expect(names).toEqual(expect.arrayContaining(['eth0-nic', 'k6t-eth0', 'tap0']));
      const tap = result.interfaces.find((i) => i.name === 'tap0' && i.sandbox === cni.pod.path);
      expect(tap).toBeDefined();
      const guest = result.interfaces[result.interfaces.length - 1];
      expect(guest).toEqual({ name: 'tap0', mac: podMac, sandbox: cni.containerId });
      // The primary's result passes through (its interfaces first, its IP on eth0), then ours and the guest's address.
      expect(result.interfaces.slice(0, 3)).toEqual(cni.attachments[0]?.result.interfaces);
      expect(result.ips).toEqual([...(cni.attachments[0]?.result.ips ?? []), { address: '10.244.0.2/24', gateway: '10.244.0.1', interface: result.interfaces.length - 1 }]);
      const links = (await cni.pod.execOk(['ip', '-o', 'link', 'show'])).stdout;
      expect(links).toMatch(/ tap0: .*master k6t-eth0/);
      expect(links).toMatch(/ eth0-nic@.*master k6t-eth0/);

      const check = await plugin(cni.node, env(cni, 'CHECK'), JSON.stringify(conf(cni, { prevResult: result })));
      expect(check.code, check.stdout).toBe(0);
      expect(check.stdout).toBe('');

      const del = await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(conf(cni, { prevResult: result })));
      expect(del.code, del.stdout).toBe(0);
      expect(await dumpNetns(cni.pod)).toEqual(before);
      const again = await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(conf(cni)));
      expect(again.code, again.stdout).toBe(0);
      expect(await readdir(stateDir)).toEqual([]);
    });
  });

  it('CHECK after drift fails naming what drifted; DEL still undoes everything', async () => {
    await withPod(async (cni) => {
      const before = await dumpNetns(cni.pod);
      const add = await plugin(cni.node, env(cni, 'ADD'), JSON.stringify(conf(cni)));
      expect(add.code, add.stdout).toBe(0);
      await cni.pod.execOk(['ip', 'link', 'set', 'tap0', 'nomaster']);
      const check = await plugin(cni.node, env(cni, 'CHECK'), JSON.stringify(conf(cni, { prevResult: add.json })));
      expectSpecError(check, 100, /drifted.*tap0/);
      // A tap removed behind our back (the VM runtime's doing) must not stop DEL either.
      await cni.pod.execOk(['ip', 'link', 'del', 'tap0']);
      expectSpecError(await plugin(cni.node, env(cni, 'CHECK'), JSON.stringify(conf(cni, { prevResult: add.json }))), 100, /create tap tap0/);
      const del = await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(conf(cni)));
      expect(del.code, del.stdout).toBe(0);
      expect(await dumpNetns(cni.pod)).toEqual(before);
    });
  });

  it('CHECK after an upgrade that renders another ruleset passes while the kernel holds the one ADD applied; a changed ruleset is drift', async () => {
    await withPod(async (cni) => {
      const masquerade = (extra: Record<string, unknown> = {}): string => JSON.stringify(conf(cni, { binding: 'masquerade', ...extra }));
      const add = await plugin(cni.node, env(cni, 'ADD'), masquerade());
      expect(add.code, add.stdout).toBe(0);
      // What an older agent left: its own text recorded (this version renders another), with the listing taken
      // right after its nft -f, which the kernel still holds.
      const [key = ''] = await readdir(stateDir);
      const stateFile = join(stateDir, key, 'state.json');
      const state = JSON.parse(await readFile(stateFile, 'utf8')) as { nft: { text: string; listing: string | null } };
      expect(state.nft.listing).toMatch(/^table ip nat /);
      await writeFile(stateFile, JSON.stringify({ ...state, nft: { ...state.nft, text: `${state.nft.text}# rendered by an older version\n` } }));
      const check = await plugin(cni.node, env(cni, 'CHECK'), masquerade({ prevResult: add.json }));
      expect(check.code, check.stdout).toBe(0);
      // A rule gone from the kernel is drift, whatever the version.
      await cni.pod.execOk(['nft', 'flush', 'chain', 'ip', 'nat', 'KUBEVIRT_PREINBOUND']);
      expectSpecError(await plugin(cni.node, env(cni, 'CHECK'), masquerade({ prevResult: add.json })), 100, /drifted.*nft/);
      const del = await plugin(cni.node, env(cni, 'DEL'), masquerade());
      expect(del.code, del.stdout).toBe(0);
    });
  });

  it('DEL without a netns (the runtime already removed it) and DEL of an unknown attachment succeed', async () => {
    await withPod(async (cni) => {
      const add = await plugin(cni.node, env(cni, 'ADD'), JSON.stringify(conf(cni)));
      expect(add.code, add.stdout).toBe(0);
      const del = await plugin(cni.node, env(cni, 'DEL', { CNI_NETNS: '' }), JSON.stringify(conf(cni)));
      // With no CNI_NETNS the recorded netns is used; it still exists, so the pod is restored.
      expect(del.code, del.stdout).toBe(0);
      expect((await cni.pod.execOk(['ip', '-o', 'link', 'show'])).stdout).not.toMatch(/tap0/);
      const gone = await plugin(cni.node, env(cni, 'DEL', { CNI_NETNS: '/run/netns/vna-no-such-netns', CNI_CONTAINERID: 'never-added' }), JSON.stringify(conf(cni)));
      expect(gone.code, gone.stdout).toBe(0);
    });
  });

  it('bad input is a spec error naming the field, and the kernel is unchanged', async () => {
    await withPod(async (cni) => {
      const before = await dumpNetns(cni.pod);
      const cases: [Record<string, string>, string, number, RegExp][] = [
        [env(cni, 'ADD'), '{not json', 6, /^stdin: .*not JSON/],
        [env(cni, 'ADD'), JSON.stringify(conf(cni, { cniVersion: '0.3.1' })), 1, /^cniVersion: "0.3.1" is not supported/],
        [env(cni, 'ADD'), JSON.stringify(conf(cni, { binding: 'macvtap' })), 7, /^binding: must be one of/],
        [env(cni, 'ADD'), JSON.stringify(conf(cni, { prevResult: undefined })), 7, /^prevResult: missing/],
        [env(cni, 'ADD'), JSON.stringify(conf(cni, { runtimeConfig: { mac: 'zz' } })), 7, /^runtimeConfig.mac: not a MAC/],
        [env(cni, 'ADD', { CNI_IFNAME: 'eth7' }), JSON.stringify(conf(cni)), 7, /^prevResult.interfaces: no interface "eth7"/],
        [env(cni, 'ADD', { CNI_CONTAINERID: '' }), JSON.stringify(conf(cni)), 4, /^CNI_CONTAINERID: missing/],
        [env(cni, 'ADD', { CNI_NETNS: '/run/netns/vna-no-such-netns' }), JSON.stringify(conf(cni)), 4, /^CNI_NETNS: no such network namespace/],
        [env(cni, 'FROB'), JSON.stringify(conf(cni)), 4, /^CNI_COMMAND: unknown command "FROB"/],
        [env(cni, 'CHECK'), JSON.stringify(conf(cni)), 101, /^CNI_CONTAINERID: no attachment/],
        [env(cni, 'GC'), JSON.stringify(conf(cni)), 7, /^cni.dev\/valid-attachments: missing/],
      ];
      for (const [e, stdin, code, msg] of cases) expectSpecError(await plugin(cni.node, e, stdin), code, msg);
      expect(await dumpNetns(cni.pod)).toEqual(before);
      expect(await readdir(stateDir)).toEqual([]);
    });
  });

  it('masquerade with portMappings, a MAC and the spoof-protection pod annotation (CNI 0.4.0): the pod keeps its IP, nft forwards every port to 10.0.2.2 (portMappings restrict none) and guards the guest MAC', async () => {
    await withPod(async (cni) => {
      const before = await dumpNetns(cni.pod);
      const c = conf(cni, {
        cniVersion: '0.4.0',
        binding: 'masquerade',
        runtimeConfig: {
          portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
          mac: '02:11:22:33:44:55',
          'io.kubernetes.cri.pod-annotations': { 'virt-net-agent.kubevirt.io/spoof-protection': 'true' },
        },
      });
      const add = await plugin(cni.node, env(cni, 'ADD'), JSON.stringify(c));
      expect(add.code, add.stdout).toBe(0);
      const result = add.json as { cniVersion: string; interfaces: { name: string; mac?: string; sandbox?: string }[]; ips: { version?: string; address: string }[] };
      expect(result.cniVersion).toBe('0.4.0');
      expect(result.ips.every((ip) => ip.version === '4')).toBe(true);
      expect(result.interfaces[result.interfaces.length - 1]).toEqual({ name: 'tap0', mac: '02:11:22:33:44:55', sandbox: cni.containerId });
      expect((await cni.pod.execOk(['ip', '-o', 'addr', 'show', 'eth0'])).stdout).toContain('10.244.0.2/24');
      const nft = (await cni.pod.execOk(['nft', 'list', 'ruleset'])).stdout;
      expect(nft).toMatch(/dnat to 10\.0\.2\.2/);
      expect(nft).not.toMatch(/dport 80/);
      // The pod annotation turned the anti-spoofing guard on for the tap (a bridge-family table, our own).
      expect(nft).toMatch(/table bridge \S+ \{[^]*02:11:22:33:44:55/);
      expect((await plugin(cni.node, env(cni, 'CHECK'), JSON.stringify({ ...c, prevResult: add.json }))).code).toBe(0);
      expect((await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(c))).code).toBe(0);
      expect(await dumpNetns(cni.pod)).toEqual(before);
    });
  });

  it('passt: the guest takes the pod addresses; DEL restores the pod', async () => {
    await withPod(async (cni) => {
      const before = await dumpNetns(cni.pod);
      const c = conf(cni, { binding: 'passt', cniVersion: '1.1.0' });
      const add = await plugin(cni.node, env(cni, 'ADD'), JSON.stringify(c));
      expect(add.code, add.stdout).toBe(0);
      const result = add.json as { interfaces: { name: string; sandbox?: string }[]; ips: { address: string; interface: number }[] };
      const guest = result.interfaces.length - 1;
      expect(result.interfaces[guest]?.sandbox).toBe(cni.containerId);
      expect(result.ips).toContainEqual(expect.objectContaining({ address: '10.244.0.2/24', interface: guest }));
      expect((await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(c))).code).toBe(0);
      expect(await dumpNetns(cni.pod)).toEqual(before);
    });
  });

  it('GC removes the attachments not in cni.dev/valid-attachments and keeps the listed ones; STATUS answers', async () => {
    await withPod(async (cni) => {
      const before = await dumpNetns(cni.pod);
      const add = await plugin(cni.node, env(cni, 'ADD'), JSON.stringify(conf(cni)));
      expect(add.code, add.stdout).toBe(0);
      const gcEnv = { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni', VIRT_NET_AGENT_CONFIG: config };
      const keep = await plugin(cni.node, gcEnv, JSON.stringify({ ...conf(cni, { cniVersion: '1.1.0' }), 'cni.dev/valid-attachments': [{ containerID: cni.containerId, ifname: 'eth0' }] }));
      expect(keep.code, keep.stdout).toBe(0);
      expect(await readdir(stateDir)).toHaveLength(1);
      const other = await plugin(cni.node, gcEnv, JSON.stringify({ ...conf(cni, { cniVersion: '1.1.0', name: 'othernet' }), 'cni.dev/valid-attachments': [] }));
      expect(other.code, other.stdout).toBe(0);
      expect(await readdir(stateDir)).toHaveLength(1);
      const gc = await plugin(cni.node, gcEnv, JSON.stringify({ ...conf(cni, { cniVersion: '1.1.0' }), 'cni.dev/valid-attachments': [] }));
      expect(gc.code, gc.stdout).toBe(0);
      expect(await readdir(stateDir)).toEqual([]);
      expect(await dumpNetns(cni.pod)).toEqual(before);
      const status = await plugin(cni.node, { CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni', VIRT_NET_AGENT_CONFIG: config }, JSON.stringify(conf(cni, { cniVersion: '1.1.0' })));
      expect(status.code, status.stdout).toBe(0);
      expect(status.stdout).toBe('');
    });
  });
});
