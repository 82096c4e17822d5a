// The `explain` subcommand: draws the pod's VM plumbing with live state, and traces a packet through the live nftables ruleset.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from './command.js';
import { discoverPodState } from '../apply/discover.js';
import { createNetlinkDriver } from '../drivers/netlink-driver.js';
import { InputError } from '../plan/errors.js';
import { parseNftJson, type NftRuleset } from '../explain/nft-json.js';
import { parsePacket } from '../explain/packet.js';
import { renderPicture, type PictureNetwork } from '../explain/picture.js';
import { networksFromLinks, networksFromPlan, networksFromState, traceContext } from '../explain/pod-view.js';
import { renderTrace } from '../explain/render-trace.js';
import { bridgedCrossing, bridgedNetwork, explainIntoOvn, routedCrossing, type Crossing, type OvnFlags } from '../explain/ovn-explain.js';
import { checkDbAddress, DEFAULT_OVS_DB } from '../explain/ovn-lookup.js';
import { describePacket } from '../explain/packet.js';
import { SPOOF_TABLE } from '../../bindings/spoof-nft.js';
import { tracePacket, type RoutingView } from '../explain/trace.js';
import { enterNetns } from '../apply/netns.js';
import { computePlan } from '../plan/plan.js';
import { PLAN_INPUT_OPTIONS, readPlanInputs, rejectRepeatedFlags } from './plan-flags.js';
import type { PodIdentity } from '../plan/plan-types.js';
import { POD_TARGET_OPTIONS, POD_TARGET_USAGE, podTargetFromFlags } from './pod-target.js';
import { vmiKey } from '../apply/setup.js';
import { DEFAULT_STATE_ROOT, StateDir, type AgentState } from '../apply/state-dir.js';
import type { Vmi } from '../plan/vmi-types.js';

const OPTIONS = {
  ...PLAN_INPUT_OPTIONS,
  ...POD_TARGET_OPTIONS,
  'state-dir': { type: 'string' },
  packet: { type: 'string' },
  'ovn-port': { type: 'string' },
  'ovn-sb': { type: 'string' },
  'ovn-nb': { type: 'string' },
  'ovs-db': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `Usage: virt-net-agent explain [--state-dir DIR] [--netns PATH | --pid PID] [--vmi FILE]
                             [--packet 'tcp 10.244.1.1:5000 -> 10.244.1.5:80 [in IFACE]']

Shows the pod's VM plumbing per network, read live: guest MAC/IP ↔ tap ↔ bridge ↔ pod NIC ↔ NAT ↔ pod IP, with
link state (up/down, master), the nftables rules with their packet counters, and the DHCP lease the guest gets.
With --packet, follows that packet (the first of a new connection) through the live ruleset and routing, chain
by chain, and says where it ends up and which rule sent it there, or which rule it missed. Changes nothing.

  --state-dir DIR   where setup recorded the pod (default ${DEFAULT_STATE_ROOT}): a VMI's
                    own folder, or the root (the VMI folder is picked by --vmi, or the only one there)
  --vmi FILE        the VMI: adds the full DHCP lease plan and the exact ports field in answers
  --kubevirt-config, --phase, --arch, --mac-policy   as for "plan" (only with --vmi)
  --packet TEXT     PROTO SRC[:PORT] -> DST[:PORT] [in IFACE]; PROTO is tcp, udp, icmp or icmpv6; IPv6 as [addr]:port.
                    Without "in", a packet from a pod address is locally sent, any other arrives where the
                    route back to its source points.
                    When the packet leaves through an OVN logical switch port (OVN-Kubernetes), the trace goes on
                    with ovn-trace from that port: our ruleset, the crossing, OVN's logical flows, one verdict each.
  --ovs-db DB       the node's OVS database (default ${DEFAULT_OVS_DB} when it exists): the pod NIC is an OVN
                    port when its node end carries external_ids:iface-id; its ovn-remote is the Southbound database
  --ovn-port LSP    name the logical switch port instead (with --ovn-sb)
  --ovn-sb DB       the OVN Southbound database ovn-trace reads (unix:/PATH, tcp:HOST:PORT or ssl:HOST:PORT)
  --ovn-nb DB       the Northbound database: adds the port's port security to the crossing
${POD_TARGET_USAGE}

Exit status: 0 shown; 2 bad flags or input; 1 internal error.
`;

/** The recorded state: for --vmi its folder, else the only VMI folder under the root (none: null). */
function readState(root: string, vmi: unknown): AgentState | null {
  if (vmi !== undefined) return new StateDir(root, vmiKey(vmi)).read();
  if (!existsSync(root)) return null;
  // DIR may also be one VMI's own folder (as `serve --state-dir` accepts).
  if (existsSync(join(root, 'state.json'))) return new StateDir(dirname(root), basename(root)).read();
  const keys = readdirSync(root).filter((name) => existsSync(join(root, name, 'state.json')));
  if (keys.length === 0) return null;
  if (keys.length > 1) throw new InputError('--state-dir', `${root} holds ${keys.length} VMIs (${keys.join(', ')}): pass --vmi FILE to pick one`);
  return new StateDir(root, keys[0] ?? '').read();
}

/** `nft -j list ruleset` in the current namespace (the child is spawned from the main thread, after setns). */
function listRulesetJson(): { ruleset: NftRuleset | null; problem: string | null } {
  const r = spawnSync('nft', ['-j', 'list', 'ruleset'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { ruleset: null, problem: `cannot run nft: ${r.error.message}` };
  if (r.status !== 0) return { ruleset: null, problem: `nft -j list ruleset failed: ${(r.stderr ?? '').trim().split('\n')[0] ?? ''}` };
  return { ruleset: parseNftJson(r.stdout), problem: null };
}

function priorIdentities(state: AgentState | null): Record<string, PodIdentity> {
  const identities: Record<string, PodIdentity> = {};
  for (const [name, network] of Object.entries(state?.networks ?? {})) if (network.podIdentity) identities[name] = network.podIdentity;
  return identities;
}

/** A logical switch port name as OVN-K makes them (namespace_pod, with dots and dashes); nothing to quote. */
function checkPortName(name: string): string {
  if (!/^[A-Za-z0-9_.:/-]{1,253}$/.test(name)) throw new InputError('--ovn-port', `not a logical switch port name: ${JSON.stringify(name)}`);
  return name;
}

async function run(args: readonly string[]): Promise<number> {
  const { values, tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
  rejectRepeatedFlags(tokens);
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const packet = values.packet === undefined ? null : parsePacket(values.packet);
  const ovnFlags: OvnFlags = {
    ...(values['ovn-port'] !== undefined ? { ovnPort: checkPortName(values['ovn-port']) } : {}),
    ...(values['ovn-sb'] !== undefined ? { ovnSb: checkDbAddress('--ovn-sb', values['ovn-sb']) } : {}),
    ...(values['ovn-nb'] !== undefined ? { ovnNb: checkDbAddress('--ovn-nb', values['ovn-nb']) } : {}),
    ...(values['ovs-db'] !== undefined ? { ovsDb: checkDbAddress('--ovs-db', values['ovs-db']) } : {}),
  };
  if (packet === null && Object.keys(ovnFlags).length > 0) throw new InputError('--ovn-port', 'the OVN flags (--ovn-port, --ovn-sb, --ovn-nb, --ovs-db) only go with --packet');
  if (ovnFlags.ovnPort !== undefined && ovnFlags.ovnSb === undefined) throw new InputError('--ovn-sb', '--ovn-port needs --ovn-sb (the Southbound database ovn-trace reads)');
  const ovsDbExists = existsSync(DEFAULT_OVS_DB.slice('unix:'.length));
  const inputs = values.vmi === undefined ? null : await readPlanInputs(values, 'explain');
  const vmi: Vmi | null = inputs?.vmi ?? null;
  const state = readState(values['state-dir'] ?? DEFAULT_STATE_ROOT, inputs?.vmi);
  const { target, discover } = podTargetFromFlags(values);
  if (target) enterNetns(target);
  const driver = createNetlinkDriver();
  try {
    const [links, addresses, routes] = [await driver.listLinks(), await driver.listAddresses(), await driver.listRoutes()];
    const { ruleset, problem } = listRulesetJson();
    const notes: string[] = [];
    if (problem !== null) notes.push(problem);

    let networks: PictureNetwork[];
    if (inputs !== null) {
      const pod = await discoverPodState(driver, discover);
      const plan = computePlan({ ...inputs, pod, priorIdentities: priorIdentities(state) });
      for (const e of plan.errors) notes.push(`plan: ${e.field}: ${e.message}`);
      networks = plan.errors.length === 0 ? networksFromPlan(plan, state) : state ? networksFromState(state, links, addresses, ruleset) : [];
    } else if (state !== null) {
      networks = networksFromState(state, links, addresses, ruleset);
    } else {
      networks = networksFromLinks(links, ruleset);
      notes.push('no setup state found (--state-dir): networks guessed from the k6t-* bridges');
    }

    const ipForward = driver.readSysctl('net.ipv4.ip_forward');
    let out = renderPicture({ networks, links, addresses, ruleset, ipForward });
    if (state !== null) out = `VMI ${state.vmi.namespace}/${state.vmi.name} (uid ${state.vmi.uid})\n\n${out}`;
    for (const note of notes) out += `note: ${note}\n`;

    if (packet !== null) {
      const nameOf = (index: number | null): string | null => links.find((l) => l.index === index)?.name ?? null;
      const view: RoutingView = {
        addresses: addresses.map((a) => ({ ifname: nameOf(a.index) ?? '?', cidr: a.cidr })),
        routes: routes.filter((r) => r.table === 254).map((r) => ({ dst: r.dst, dev: nameOf(r.index), gw: r.gw })),
      };
      if (packet.iif !== null && !links.some((l) => l.name === packet.iif)) throw new InputError('--packet', `no interface ${packet.iif} in the pod`);
      const bridged = bridgedNetwork(packet, networks, view);
      let crossing: Crossing | null;
      let inPod: string;
      if (bridged !== null) {
        crossing = bridgedCrossing(packet, bridged, links);
        const guard = ruleset?.chains.some((c) => c.family === 'bridge' && c.table === SPOOF_TABLE) ? `; the bridge-family spoof guard (table bridge ${SPOOF_TABLE}) filters it there (not traced)` : '';
        inPod = `packet: ${describePacket(packet)}\n  arrives on ${packet.iif ?? '?'} from the guest of network ${bridged.name} (${bridged.binding} binding)\n` +
          `  ${bridged.bridge ?? '?'} forwards the frame at layer 2 to ${bridged.nicName ?? '?'}: the pod's IP hooks (nat, filter) and routes never see it${guard}\n` +
          `verdict: bridged out of ${bridged.nicName ?? '?'} unchanged (source ${packet.saddr}, guest MAC ${bridged.guestMac ?? '?'})\n`;
      } else {
        const trace = tracePacket(ruleset ?? { chains: [] }, view, packet);
        crossing = routedCrossing(trace, view, links);
        inPod = renderTrace(trace, view, traceContext(networks, vmi, ruleset));
      }
      const ourVerdict = /^verdict: (.*)$/m.exec(inPod)?.[1] ?? '?';
      const ovn = crossing === null ? null : explainIntoOvn(packet, crossing, ovnFlags, ovsDbExists, ourVerdict);
      out += ovn === null ? `\n${inPod}` : `\n── in the pod: virt-net-agent's ruleset and routing ──\n${inPod}${ovn}`;
    }
    process.stdout.write(out);
    return 0;
  } finally {
    driver.close();
  }
}

export const explainCommand: Command = { usage: USAGE, run };
