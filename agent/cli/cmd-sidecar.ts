// The `sidecar` subcommand: serves KubeVirt's hook API (Info, Callbacks v1alpha3/v1alpha2) on a unix socket so the agent can be a network binding plugin.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Command } from './command.js';
import { discoverPodState } from '../apply/discover.js';
import { createNetlinkDriver } from '../drivers/netlink-driver.js';
import { InputError } from '../plan/errors.js';
import { readPodState } from './input.js';
import { enterNetns } from '../apply/netns.js';
import { ARCHES, hostArch, MAC_POLICIES, oneOf, podIpFromEnv, rejectRepeatedFlags, withFlag } from './plan-flags.js';
import type { PodState } from '../plan/pod-state.js';
import { POD_TARGET_OPTIONS, POD_TARGET_USAGE, podTargetFromFlags } from './pod-target.js';
import { readDocument } from './input.js';
import { parseKubeVirtConfig } from '../plan/vmi-shape.js';
import type { KubeVirtConfig } from '../plan/vmi-types.js';

const OPTIONS = {
  ...POD_TARGET_OPTIONS,
  socket: { type: 'string' },
  name: { type: 'string' },
  pod: { type: 'string' },
  'kubevirt-config': { type: 'string' },
  arch: { type: 'string' },
  'mac-policy': { type: 'string' },
  'passt-socket': { type: 'string' },
  'binding-plugin': { type: 'string' },
  serve: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `Usage: virt-net-agent sidecar --socket PATH [--name NAME] [--pod FILE | discover's flags]
                             [--kubevirt-config FILE] [--arch ARCH] [--mac-policy POLICY] [--passt-socket PATH]
                             [--binding-plugin NAME] [--serve]

Serves KubeVirt's hook sidecar gRPC API on a unix socket, so the agent can run as a network binding plugin
sidecar: kubevirt.hooks.info.Info (hook points OnDefineDomain, PreCloudInitIso, Shutdown; versions v1alpha3,
v1alpha2) and kubevirt.hooks.v1alpha3/v1alpha2.Callbacks. OnDefineDomain plans the VMI it receives against the pod
and returns the domain XML with the planned <interface>, <hostdev> and <memoryBacking> merged in; everything else
in the domain is kept. Bad input gets a gRPC error status with one line naming the field; the server stays up.
Shutdown (or SIGTERM/SIGINT) stops the server, removes the socket and exits 0. A stale socket is removed at start.

  --socket PATH           the socket, e.g. /var/run/kubevirt-hooks/<name>.sock (required)
  --name NAME             the hook name Info reports (default: virt-net-agent)
  --pod FILE              a fixed pod state (what "discover" prints); default: discover it at each call
  --kubevirt-config FILE  the KubeVirt CR or its spec.configuration (binding plugins are registered there)
  --arch ARCH             amd64, arm64, s390x (default: this machine's architecture)
  --mac-policy POLICY     pod (default) or stable (see: virt-net-agent help plan)
  --passt-socket PATH     libvirt < 11.1: attach the passtBinding interface to the agent-managed passt at PATH
                          (virt-net-agent passt) through <qemu:commandline> -netdev stream, not vhost-user
  --binding-plugin NAME   plan only the interfaces with binding: {name: NAME}, as masquerade (what the
                          binding-plugin CNI plumbed; docs/cni.md); default: $NETWORK_BINDING_PLUGIN_NAME,
                          which KubeVirt sets in a binding plugin's sidecar; a VMI without one is left unchanged
  --serve                 also serve DHCPv4/DHCPv6/RA for the planned networks, in this process (what "serve"
                          does from a state dir), from the first OnDefineDomain on; on the target pod of a
                          migration (status.migrationState.targetPod = the pod hostname, --hostname or this
                          one) the plan is migration-target

Discovery (without --pod):
${POD_TARGET_USAGE}

Exit status: 0 after Shutdown or a signal; 2 bad flags or input; 1 internal error.
`;

async function run(args: readonly string[]): Promise<number> {
  const { values, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  rejectRepeatedFlags(tokens);
  const socketPath = values.socket;
  if (socketPath === undefined || socketPath === '') throw new InputError('--socket', 'is required (see: virt-net-agent help sidecar)');
  const name = values.name ?? 'virt-net-agent';
  if (name === '') throw new InputError('--name', 'needs a value');
  const arch = oneOf(values.arch, '--arch', ARCHES) ?? hostArch();
  const macPolicy = oneOf(values['mac-policy'], '--mac-policy', MAC_POLICIES);
  const myPodIp = podIpFromEnv(process.env);
  const bindingPlugin = values['binding-plugin'] ?? process.env['NETWORK_BINDING_PLUGIN_NAME'];
  if (bindingPlugin === '') throw new InputError('--binding-plugin', 'needs a value');
  let config: KubeVirtConfig = {};
  if (values['kubevirt-config'] !== undefined) {
    const document = await readDocument(values['kubevirt-config'], '--kubevirt-config');
    config = withFlag('--kubevirt-config', () => parseKubeVirtConfig(document));
  }

  let pod: () => Promise<PodState>;
  if (values.pod !== undefined) {
    if (values.netns !== undefined || values.pid !== undefined) throw new InputError('--pod', 'give either --pod or --netns/--pid, not both');
    const fixed = await readPodState(values.pod, '--pod');
    pod = () => Promise.resolve(fixed);
  } else {
    const { target, discover } = podTargetFromFlags(values);
    // Before any netlink socket exists: those are bound to the namespace current when they are created.
    if (target !== undefined) enterNetns(target);
    pod = async () => {
      const driver = createNetlinkDriver();
      try {
        return await discoverPodState(driver, discover);
      } finally {
        driver.close();
      }
    };
  }

  const log = pino({ name: 'virt-net-agent', base: { cmd: 'sidecar' } }, pino.destination(2));
  const { startSidecar } = await import('../sidecar/server.js');
  const { defineDomainWithPlan } = await import('../sidecar/define-domain.js');
  const services = values.serve === true ? new (await import('./sidecar-serve.js')).SidecarServices() : null;
  const server = await startSidecar({
    socketPath,
    name,
    log,
    onDefineDomain: async (domainXml, vmi) => {
      const defined = await defineDomainWithPlan(domainXml, vmi, {
        pod,
        config,
        arch,
        podName: values.hostname ?? hostname(),
        ...(bindingPlugin !== undefined ? { bindingPlugin } : {}),
        ...(myPodIp !== undefined ? { myPodIp } : {}),
        ...(macPolicy !== undefined ? { macPolicy } : {}),
        ...(values['passt-socket'] !== undefined ? { passtSocket: values['passt-socket'] } : {}),
      });
      if (services !== null && defined.plan !== null) await services.update(defined.plan);
      return defined.xml;
    },
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'stopping');
    void server.close();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await server.stopped;
  await services?.close();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return 0;
}

export const sidecarCommand: Command = { usage: USAGE, run };
