// The CNI plugin's pure parts: version negotiation, configuration/environment checks, prevResult, result shapes, errors.
import { describe, expect, it } from 'vitest';
import { parseCniArgs, parseNetConf, parseRequest } from '../../agent/cni/config.js';
import { CniSpecError } from '../../agent/cni/errors.js';
import { handleCniInvocation as handle, type CniInvocation } from '../../agent/cni/invocation.js';
import { defaultAgentConfig } from '../../agent/cni/agent-config.js';
import { parsePrevResult, podNicOf } from '../../agent/cni/prev-result.js';
import { convertResult, renderResult } from '../../agent/cni/result.js';
import { chainedVmi } from '../../agent/cni/vmi-input.js';
import { negotiateVersion } from '../../agent/cni/version.js';
import { resolvConfText } from '../../agent/cni/attachment.js';

/** The plugin under a configuration whose state root does not exist (these checks fail before any state is touched). */
const handleCniInvocation = (invocation: CniInvocation) => handle(invocation, { ...defaultAgentConfig(), stateRoot: '/nonexistent/vna-unit' });

function specError(fn: () => unknown): { code: number; message: string } {
  try {
    fn();
  } catch (error) {
    if (error instanceof CniSpecError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('no error thrown');
}

const PREV = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'cni0', mac: '02:00:00:00:00:01' }, { name: 'veth1', mac: '02:00:00:00:00:02' }, { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/netns/p' }],
  ips: [{ address: '10.244.0.2/24', gateway: '10.244.0.1', interface: 2 }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] },
};
const BASE = { cniVersion: '1.1.0', name: 'podnet', type: 'virt-net-agent', binding: 'masquerade', prevResult: PREV };

describe('version negotiation', () => {
  it('takes a supported cniVersion, the highest common of cniVersions, and refuses others with code 1', () => {
    expect(negotiateVersion('0.4.0', undefined)).toBe('0.4.0');
    expect(negotiateVersion(undefined, ['0.3.1', '1.0.0', '0.4.0'])).toBe('1.0.0');
    expect(specError(() => negotiateVersion('0.3.1', undefined))).toEqual({ code: 1, message: 'cniVersion: "0.3.1" is not supported (this plugin speaks 0.4.0, 1.0.0, 1.1.0)' });
    expect(specError(() => negotiateVersion(undefined, ['0.2.0']))).toMatchObject({ code: 1, message: expect.stringMatching(/^cniVersions: /) });
    expect(specError(() => negotiateVersion(undefined, undefined))).toEqual({ code: 7, message: 'cniVersion: missing' });
  });

  it('VERSION answers without any configuration', async () => {
    expect(await handleCniInvocation({ env: { CNI_COMMAND: 'VERSION' }, stdin: '' })).toEqual({
      stdout: '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}\n',
      exitCode: 0,
    });
  });
});

describe('configuration and environment', () => {
  it('reads the capabilities: portMappings, mac, pod annotations; args.cni.logicNetworkName', () => {
    const conf = parseNetConf(
      JSON.stringify({
        ...BASE,
        args: { cni: { logicNetworkName: 'blue' } },
        runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'TCP' }], mac: '02:AA:00:00:00:01', 'io.kubernetes.cri.pod-annotations': { a: 'b' } },
      }),
      'ADD',
    );
    expect(conf).toMatchObject({ binding: 'masquerade', logicNetworkName: 'blue', portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], mac: '02:AA:00:00:00:01', podAnnotations: { a: 'b' } });
  });

  it('names the field of every bad value (code 7), malformed JSON is code 6', () => {
    const bad = (extra: Record<string, unknown>) => specError(() => parseNetConf(JSON.stringify({ ...BASE, ...extra }), 'ADD'));
    expect(specError(() => parseNetConf('[1', 'ADD'))).toMatchObject({ code: 6, message: expect.stringMatching(/^stdin: /) });
    expect(specError(() => parseNetConf('[]', 'ADD'))).toMatchObject({ code: 6 });
    expect(bad({ name: 'has space' })).toMatchObject({ code: 7, message: expect.stringMatching(/^name: /) });
    expect(bad({ type: '' })).toMatchObject({ code: 7, message: 'type: missing' });
    expect(bad({ binding: 'sriov' })).toMatchObject({ code: 7, message: expect.stringMatching(/^binding: must be one of bridge, masquerade, passt/) });
    expect(bad({ runtimeConfig: { portMappings: [{ containerPort: 0 }] } })).toMatchObject({ message: expect.stringMatching(/^runtimeConfig.portMappings\[0\].containerPort: /) });
    expect(bad({ runtimeConfig: { portMappings: [{ containerPort: 80, protocol: 'icmp' }] } })).toMatchObject({ message: expect.stringMatching(/protocol: /) });
    expect(bad({ runtimeConfig: { mac: 'nope' } })).toMatchObject({ message: expect.stringMatching(/^runtimeConfig.mac: /) });
    expect(bad({ spoofProtection: 'yes' })).toMatchObject({ message: expect.stringMatching(/^spoofProtection: /) });
    expect(bad({ serveDhcp: 'no' })).toMatchObject({ code: 7, message: 'serveDhcp: must be true or false' });
    expect(bad({ 'cni.dev/valid-attachments': [{ containerID: 1 }] })).toMatchObject({ message: expect.stringMatching(/^cni.dev\/valid-attachments\[0\]: /) });
    expect(bad({ prevResult: { ips: [{ address: '10.0.0.1', interface: 0 }] } })).toMatchObject({ message: expect.stringMatching(/^prevResult.ips\[0\].address: /) });
    expect(bad({ prevResult: { interfaces: [], ips: [{ address: '10.0.0.1/24', interface: 3 }] } })).toMatchObject({ message: expect.stringMatching(/^prevResult.ips\[0\].interface: /) });
  });

  it('DEL and GC ignore a bad binding (the chain DEL must go on)', () => {
    expect(parseNetConf(JSON.stringify({ ...BASE, binding: 'nonsense' }), 'DEL').binding).toBeNull();
  });

  it("reads containerd 1.6's portMappings keys as Go does (case-insensitively: go-cni sends HostPort, ContainerPort, Protocol, HostIP)", () => {
    const conf = parseNetConf(JSON.stringify({ ...BASE, runtimeConfig: { portMappings: [{ HostPort: 8080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }, { HostPort: 5353, ContainerPort: 53, Protocol: 'udp', HostIP: '' }] } }), 'ADD');
    expect(conf.portMappings).toEqual([{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostPort: 5353, containerPort: 53, protocol: 'udp' }]);
  });

  it('ADD refuses a bad runtimeConfig value, the clean-up DEL (and GC) of the same configuration goes on without it', () => {
    const text = JSON.stringify({ ...BASE, runtimeConfig: { portMappings: [{ port: 80 }], mac: 'nope' } });
    expect(specError(() => parseNetConf(text, 'ADD'))).toMatchObject({ code: 7, message: expect.stringMatching(/^runtimeConfig\./) });
    expect(parseNetConf(text, 'DEL')).toMatchObject({ portMappings: [], mac: null, podAnnotations: {} });
    expect(parseNetConf(text, 'GC')).toMatchObject({ portMappings: [] });
  });

  it('checks the environment per command (code 4)', () => {
    const env = { CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/p', CNI_IFNAME: 'eth0' };
    const conf = JSON.stringify(BASE);
    expect(specError(() => parseRequest({ ...env, CNI_NETNS: '' }, conf, 'ADD'))).toEqual({ code: 4, message: 'CNI_NETNS: missing' });
    expect(parseRequest({ ...env, CNI_NETNS: '' }, conf, 'DEL').netns).toBe('');
    expect(specError(() => parseRequest({ ...env, CNI_CONTAINERID: '-x' }, conf, 'ADD'))).toMatchObject({ code: 4, message: expect.stringMatching(/^CNI_CONTAINERID: /) });
    expect(specError(() => parseRequest({ ...env, CNI_IFNAME: 'a/b' }, conf, 'ADD'))).toMatchObject({ code: 4, message: expect.stringMatching(/^CNI_IFNAME: /) });
    expect(parseRequest({}, conf, 'STATUS').containerId).toBe('');
    expect(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=web')).toEqual({ IgnoreUnknown: '1', K8S_POD_NAME: 'web' });
    expect(specError(() => parseCniArgs('novalue'))).toMatchObject({ code: 4, message: expect.stringMatching(/^CNI_ARGS: /) });
  });

  it('unknown or missing CNI_COMMAND is a spec error object with code 4', async () => {
    const r = await handleCniInvocation({ env: { CNI_COMMAND: 'PING' }, stdin: '' });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.1.0', code: 4, msg: 'CNI_COMMAND: unknown command "PING" (one of ADD, DEL, CHECK, STATUS, GC, VERSION)' });
    expect(JSON.parse((await handleCniInvocation({ env: {}, stdin: '' })).stdout)).toMatchObject({ code: 4, msg: 'CNI_COMMAND: missing' });
  });

  it('reports an error in the configuration\'s version', async () => {
    const r = await handleCniInvocation({ env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth9' }, stdin: JSON.stringify({ ...BASE, cniVersion: '0.4.0' }) });
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '0.4.0', code: 7, msg: expect.stringMatching(/^prevResult.interfaces: no interface "eth9"/) });
  });
});

describe('prevResult and results', () => {
  it('finds the pod NIC in the sandbox and its IPs by index', () => {
    const nic = podNicOf(parsePrevResult(PREV), 'eth0');
    expect(nic.index).toBe(2);
    expect(nic.ips).toEqual([{ address: '10.244.0.2/24', gateway: '10.244.0.1', interface: 2 }]);
    expect(specError(() => podNicOf(parsePrevResult(PREV), 'cni0'))).toMatchObject({ code: 7 });
  });

  it('0.4.0 results carry the IP version, 1.x do not; conversion adds or drops it', () => {
    const body = { interfaces: [{ name: 'tap0', mac: '02:00:00:00:00:09', sandbox: '/run/netns/p' }], ips: [{ address: 'fd10::2/120', interface: 0 }], routes: [], dns: {} };
    expect(renderResult('0.4.0', body)).toEqual({ cniVersion: '0.4.0', interfaces: body.interfaces, ips: [{ version: '6', address: 'fd10::2/120', interface: 0 }], dns: {} });
    const one = renderResult('1.1.0', body);
    expect(one['ips']).toEqual([{ address: 'fd10::2/120', interface: 0 }]);
    expect(convertResult('1.0.0', renderResult('0.4.0', body))['ips']).toEqual([{ address: 'fd10::2/120', interface: 0 }]);
  });

  it('maps the capabilities onto the VMI: mac → macAddress, the annotation; portMappings restrict no port (a kubelet passes only those with a hostPort)', () => {
    const conf = parseNetConf(
      JSON.stringify({
        ...BASE,
        runtimeConfig: {
          portMappings: [{ hostPort: 1, containerPort: 80 }, { hostPort: 2, containerPort: 80 }, { containerPort: 53, protocol: 'udp' }],
          mac: '02:AA:00:00:00:01',
          'io.kubernetes.cri.pod-annotations': { 'virt-net-agent.kubevirt.io/spoof-protection': 'true', other: 'x' },
        },
      }),
      'ADD',
    );
    const vmi = chainedVmi(conf, 'masquerade', 'key', 'cid', 'eth0') as { metadata: { annotations: object }; spec: { domain: { devices: { interfaces: object[] } } } };
    expect(vmi.spec.domain.devices.interfaces).toEqual([{ name: 'default', masquerade: {}, macAddress: '02:aa:00:00:00:01' }]);
    expect(vmi.metadata.annotations).toEqual({ 'virt-net-agent.kubevirt.io/spoof-protection': 'true' });
  });

  it('writes resolv.conf from the primary plugin\'s DNS', () => {
    expect(resolvConfText({ nameservers: ['10.96.0.10'], domain: 'ns.svc', search: ['svc'], options: ['ndots:5'] })).toBe('nameserver 10.96.0.10\nsearch ns.svc svc\noptions ndots:5\n');
    expect(resolvConfText({})).toBe('');
  });
});
