// Issue 26, hole 3 (its second half): strings of the network configuration, prevResult and CNI_ARGS that reach a file or the guest are validated, so a tenant cannot write lines of its choosing into the resolv.conf root reads back or into the guest's DHCP options.
//
// The attacks are a NAD whose prevResult carries DNS strings with newlines (a single-plugin NAD config may carry any
// prevResult), and a pod name with a newline in CNI_ARGS. Each must be refused naming the field, with nothing changed
// in the pod and nothing recorded.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dumpNetns } from '../helpers/agent-run.js';
import { plugin, usePluginPod } from '../helpers/cni-plugin.js';
import { netnsAvailable } from '../helpers/netns.js';

describe.skipIf(!netnsAvailable())('strings that reach a file or the guest are validated (hole 3)', { timeout: 120_000 }, () => {
  const pod = usePluginPod('vna-sec-strings-', { podCidr: '10.244.92.0/24', cniArgs: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=virt-launcher-a-x7k2q' });
  const { env } = pod;
  const withDns = (dns: Record<string, unknown>): string => {
    const prev = pod.cni.attachments[0]?.result ?? {};
    return JSON.stringify({ cniVersion: '1.0.0', name: 'tenantnet', type: 'virt-net-agent', binding: 'masquerade', prevResult: { ...prev, dns } });
  };

  async function refused(run: Promise<{ json: Record<string, unknown> | null }>, code: number, msg: RegExp): Promise<void> {
    const before = await dumpNetns(pod.cni.pod);
    const r = await run;
    try {
      // Nothing recorded (a successful ADD would have left its folder and its resolv.conf), nothing plumbed.
      expect(readdirSync(pod.stateRoot)).toEqual([]);
      expect(await dumpNetns(pod.cni.pod)).toEqual(before);
      expect(r.json).toMatchObject({ code, msg: expect.stringMatching(msg) });
    } finally {
      await plugin(pod.cni.node, env('DEL'), withDns({}));
    }
  }

  it('a nameserver with a newline (a second nameserver of the tenant\'s choosing) is error 7 naming it', async () => {
    await refused(plugin(pod.cni.node, env('ADD'), withDns({ nameservers: ['10.96.0.10\nnameserver 203.0.113.66'] })), 7, /^prevResult\.dns\.nameservers\[0\]: must be an IP address/);
  });

  it('a search domain or domain with a newline, an options token with one, a nameserver that is a name: error 7 naming each', async () => {
    await refused(plugin(pod.cni.node, env('ADD'), withDns({ nameservers: ['10.96.0.10'], search: ['svc.cluster.local\noptions ndots:0'] })), 7, /^prevResult\.dns\.search\[0\]: must be a DNS name/);
    await refused(plugin(pod.cni.node, env('ADD'), withDns({ domain: 'cluster.local\nnameserver 203.0.113.66' })), 7, /^prevResult\.dns\.domain: must be a DNS name/);
    await refused(plugin(pod.cni.node, env('ADD'), withDns({ options: ['ndots:5\nnameserver 203.0.113.66'] })), 7, /^prevResult\.dns\.options\[0\]: must be a resolv\.conf option/);
    await refused(plugin(pod.cni.node, env('ADD'), withDns({ nameservers: ['dns.example.com'] })), 7, /^prevResult\.dns\.nameservers\[0\]: must be an IP address/);
  });

  it('a pod name with a newline (it becomes the guest\'s DHCP hostname) is error 4 naming CNI_ARGS', async () => {
    const args = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=a\nb';
    await refused(plugin(pod.cni.node, env('ADD', { CNI_ARGS: args }), withDns({ nameservers: ['10.96.0.10'] })), 4, /^CNI_ARGS: K8S_POD_NAME is not a Kubernetes pod name/);
  });

  it('well-formed DNS is still taken: IPv4, IPv6 with a zone, search names with "_", options with values', async () => {
    const r = await plugin(pod.cni.node, env('ADD'), withDns({ nameservers: ['10.96.0.10', 'fe80::1%eth0'], domain: 'cluster.local.', search: ['_tcp.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5', 'single-request-reopen'] }));
    try {
      expect(r.code, r.stdout).toBe(0);
    } finally {
      expect((await plugin(pod.cni.node, env('DEL'), withDns({}))).code).toBe(0);
    }
  });
});
