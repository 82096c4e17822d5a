// Test harness: an OVN-Kubernetes-style pod network (OVS 3.1 + OVN 23.03, userspace datapath) in network namespaces.
//
// After /work/shared/reference/ovn/ (its scripts are the recipe; this is our own code). One central (NB + SB
// ovsdb-server, ovn-northd) and one or more chassis, each a uniquely named netns with its own ovsdb-server,
// ovs-vswitchd (datapath_type=netdev: no kernel module) and ovn-controller, joined by an underlay bridge in a further
// netns (geneve between the chassis). Every daemon gets a private directory under one mkdtemp, talks over unix
// sockets only, and is stopped by the PID of its pidfile (checked against its command line) in stop(); a process
// exit hook does the same for a test that crashed. Topology as OVN-K builds it: logical switch "pods"
// (10.128.0.0/24) on router "ovn_cluster_router" (10.128.0.1, 0a:58:0a:80:00:01), and logical switch "l2net"
// (10.129.0.0/24, no router) for a layer2 secondary network. Pods as OVN-K's CNI makes them: an LSP with addresses
// and port security, a veth whose host end is on br-int with external_ids:iface-id, pod end eth0 with a 0a:58:… MAC,
// MTU 1400 and tx checksum offload off (the userspace datapath reads the host end with AF_PACKET and forwards
// partial checksums unfixed: TCP breaks otherwise).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNetns, makeNetns, run, waitFor, type ExecResult, type Netns } from './netns.js';

const OVS_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const NB_SCHEMA = '/usr/share/ovn/ovn-nb.ovsschema';
const SB_SCHEMA = '/usr/share/ovn/ovn-sb.ovsschema';
const BINARIES = ['ovsdb-server', 'ovsdb-tool', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl', 'ovn-northd', 'ovn-controller', 'ovn-nbctl', 'ovn-sbctl', 'ovn-trace', 'ethtool', 'ping'];
const DAEMON_NAMES = /^(ovsdb-server|ovs-vswitchd|ovn-controller|ovn-northd)$/;

/** The pod network: logical switch "pods" behind the cluster router. */
export const POD_SUBNET = { cidr: '10.128.0.0/24', prefix: 24, gateway: '10.128.0.1', routerMac: '0a:58:0a:80:00:01', switch: 'pods' } as const;
/** The layer2 secondary network (an OVN-K `layer2` NAD): a switch without a router. */
export const L2_SUBNET = { cidr: '10.129.0.0/24', prefix: 24, switch: 'l2net' } as const;

/** OVN-K's pod MAC: 0a:58 followed by the IPv4 address. */
export function ovnMac(ip: string): string {
  return ['0a', '58', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/** Why OVN tests cannot run here (VNA_OVN=0, not root, a binary missing), or null. */
export function ovnMissing(): string | null {
  if (process.env['VNA_OVN'] === '0') return 'VNA_OVN=0';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root';
  for (const bin of BINARIES) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed (scripts/setup.sh installs openvswitch-switch ovn-central ovn-host ethtool iputils-ping)`;
  }
  for (const file of [OVS_SCHEMA, NB_SCHEMA, SB_SCHEMA]) if (!existsSync(file)) return `${file} is missing`;
  return null;
}

async function ok(cmd: readonly string[], env?: Record<string, string>, timeoutMs = 30_000): Promise<ExecResult> {
  const r = await run(env ? ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...cmd] : cmd, { timeoutMs });
  if (r.code !== 0) throw new Error(`command failed (exit ${r.code}): ${cmd.join(' ')}\n${r.stderr.trim()}`);
  return r;
}

/** Every daemon this process started and has not stopped yet: pidfile → the directory its command line names. */
const started = new Map<string, string>();
let exitHook = false;

function pidOf(pidfile: string, dir: string): number | null {
  if (!existsSync(pidfile)) return null;
  const pid = Number(readFileSync(pidfile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) return null;
  try {
    // Only a daemon we started: its name is an OVS/OVN daemon's and its command line names our private directory.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const name = (cmdline[0] ?? '').split('/').pop() ?? '';
    if (!DAEMON_NAMES.test(name) || !cmdline.some((arg) => arg.includes(dir))) return null;
    return pid;
  } catch {
    return null;
  }
}

/** Alive and not a zombie (a detached daemon is reparented; PID 1 may reap it late). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function stopDaemon(pidfile: string): Promise<void> {
  const dir = started.get(pidfile);
  started.delete(pidfile);
  if (dir === undefined) return;
  const pid = pidOf(pidfile, dir);
  if (pid === null) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 5000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const [pidfile, dir] of started) {
      const pid = pidOf(pidfile, dir);
      if (pid !== null) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });
}

/** One chassis ("node"): its netns, private OVS/OVN directory and the three daemons. */
export class Chassis {
  constructor(
    readonly name: string,
    readonly ns: Netns,
    readonly dir: string,
    readonly encapIp: string,
  ) {}

  get env(): Record<string, string> {
    const d = this.dir;
    return {
      OVS_RUNDIR: d, OVS_DBDIR: d, OVS_LOGDIR: d, OVS_SYSCONFDIR: d, OVS_PKGDATADIR: '/usr/share/openvswitch',
      OVN_RUNDIR: d, OVN_DBDIR: d, OVN_LOGDIR: d, OVN_SYSCONFDIR: d,
    };
  }

  vsctl(args: readonly string[]): Promise<ExecResult> {
    return ok(['ovs-vsctl', `--db=unix:${join(this.dir, 'db.sock')}`, ...args], this.env);
  }

  /** ovs-appctl to this chassis' ovs-vswitchd. */
  appctl(args: readonly string[]): Promise<ExecResult> {
    return ok(['ovs-appctl', '-t', join(this.dir, 'ovs-vswitchd.ctl'), ...args], this.env);
  }

  /** external_ids:ovn-installed of an interface: ovn-controller has put its flows in place. */
  async installed(iface: string): Promise<boolean> {
    const r = await run(['ovs-vsctl', `--db=unix:${join(this.dir, 'db.sock')}`, '--if-exists', 'get', 'interface', iface, 'external_ids:ovn-installed']);
    return r.code === 0 && r.stdout.trim() === '"true"';
  }

  /** Where the datapath sends a packet entering on `inPort` (ofproto/trace, its "Datapath actions" line). */
  async datapathActions(flow: string): Promise<string> {
    const out = (await this.appctl(['ofproto/trace', 'br-int', flow])).stdout;
    return /^Datapath actions: (.*)$/m.exec(out)?.[1] ?? out;
  }
}

export interface OvnPodOptions {
  readonly chassis: Chassis;
  /** The logical switch port (default: a name of its own); a migration target names the source's. */
  readonly lsp?: string;
  readonly network?: 'pods' | 'l2net';
  readonly ip: string;
  readonly mac?: string;
  /** Do not create the LSP (it exists: a migration target, or a second interface on an existing port). */
  readonly noLsp?: boolean;
  /** Leave eth0 without the address and route (a pod whose address comes from OVN's DHCP). */
  readonly noIp?: boolean;
  /** Do not wait for ovn-installed (a migration target's port before activation is installed but blocked). */
  readonly noWait?: boolean;
  /** Add this interface to an existing pod netns instead of a new one (a Multus secondary). */
  readonly into?: Netns;
  /** The interface name in the pod (default eth0). */
  readonly ifname?: string;
}

export interface OvnPod {
  readonly ns: Netns;
  readonly chassis: Chassis;
  readonly lsp: string;
  /** The veth's host end on br-int (in the chassis netns). */
  readonly hostIf: string;
  readonly ifname: string;
  readonly ip: string;
  readonly mac: string;
  /** "10.128.0.5/24" */
  readonly cidr: string;
  /** The pod netns is deleted by remove() only when this pod made it. */
  readonly ownsNetns: boolean;
}

let hostIfCounter = 0;

/** The whole OVN network; start() brings it up, stop() takes all of it down (safe to call twice). */
export class OvnNetwork {
  readonly chassis: Chassis[] = [];
  readonly pods: OvnPod[] = [];
  private underlay: Netns | undefined;
  private stopped = false;

  private constructor(readonly dir: string) {}

  get centralDir(): string {
    return join(this.dir, 'central');
  }

  /** OVN_NB_DB / OVN_SB_DB for ovn-nbctl, ovn-sbctl and ovn-trace. */
  get dbEnv(): Record<string, string> {
    return { OVN_NB_DB: `unix:${join(this.centralDir, 'ovnnb_db.sock')}`, OVN_SB_DB: `unix:${join(this.centralDir, 'ovnsb_db.sock')}` };
  }

  get nbDb(): string {
    return this.dbEnv['OVN_NB_DB'] ?? '';
  }

  get sbDb(): string {
    return this.dbEnv['OVN_SB_DB'] ?? '';
  }

  nbctl(args: readonly string[]): Promise<ExecResult> {
    return ok(['ovn-nbctl', `--db=${this.nbDb}`, ...args]);
  }

  sbctl(args: readonly string[]): Promise<ExecResult> {
    return ok(['ovn-sbctl', `--db=${this.sbDb}`, ...args]);
  }

  /** Central + `chassisCount` chassis + the pods/l2net topology. On failure everything started so far is stopped. */
  static async start(options: { chassis?: number } = {}): Promise<OvnNetwork> {
    const missing = ovnMissing();
    if (missing !== null) throw new Error(`OVN harness: ${missing}`);
    installExitHook();
    const net = new OvnNetwork(mkdtempSync(join(tmpdir(), 'vna-ovn-')));
    try {
      await net.startCentral();
      net.underlay = await makeNetns('ovn-ul');
      await net.underlay.execOk(['ip', 'link', 'add', 'ulbr', 'type', 'bridge']);
      await net.underlay.execOk(['ip', 'link', 'set', 'ulbr', 'up']);
      const count = options.chassis ?? 2;
      for (let i = 1; i <= count; i++) net.chassis.push(await net.startChassis(`node${i}`, `172.31.255.${i}`));
      // Warm the userspace tunnel's neighbour cache: else the first packet to each remote chassis is dropped.
      for (const a of net.chassis) for (const b of net.chassis) if (a !== b) await a.ns.exec(['ping', '-c1', '-W2', b.encapIp]);
      await net.topology();
      return net;
    } catch (err) {
      await net.stop().catch(() => undefined);
      throw err;
    }
  }

  private async daemon(argv: readonly string[], pidfile: string, env?: Record<string, string>, ns?: Netns): Promise<void> {
    started.set(pidfile, this.dir);
    const cmd = ns ? ['ip', 'netns', 'exec', ns.name, ...argv] : argv;
    await ok([...cmd, `--pidfile=${pidfile}`, '--detach', '--no-chdir', '-vconsole:off'], env, 60_000);
  }

  private async startCentral(): Promise<void> {
    const c = this.centralDir;
    mkdirSync(c, { recursive: true });
    for (const [db, schema] of [['nb', NB_SCHEMA], ['sb', SB_SCHEMA]] as const) {
      const name = `ovn${db}_db`;
      await ok(['ovsdb-tool', 'create', join(c, `${name}.db`), schema]);
      await this.daemon(['ovsdb-server', join(c, `${name}.db`), `--remote=punix:${join(c, `${name}.sock`)}`, `--unixctl=${join(c, `${name}.ctl`)}`, `--log-file=${join(c, `${name}.log`)}`], join(c, `${name}.pid`));
    }
    await this.nbctl(['--no-wait', 'init']);
    await this.daemon(['ovn-northd', `--ovnnb-db=${this.nbDb}`, `--ovnsb-db=${this.sbDb}`, `--unixctl=${join(c, 'ovn-northd.ctl')}`, `--log-file=${join(c, 'ovn-northd.log')}`], join(c, 'ovn-northd.pid'));
    await waitFor(async () => (await run(['ovs-appctl', '-t', join(c, 'ovn-northd.ctl'), 'status'])).stdout.includes('active'), { timeoutMs: 20_000, intervalMs: 50, what: 'ovn-northd active' });
  }

  private async startChassis(name: string, encapIp: string): Promise<Chassis> {
    const dir = join(this.dir, name);
    mkdirSync(dir, { recursive: true });
    const ns = await makeNetns(`ovn-${name}`);
    const chassis = new Chassis(name, ns, dir, encapIp);
    try {
      // No IPv6 chatter (MLD/RS) from the chassis' side of the pods' veths.
      await ns.execOk(['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      const ul = `ul-${name}`;
      await this.underlay!.execOk(['ip', 'link', 'add', ul, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns.name]);
      await this.underlay!.execOk(['ip', 'link', 'set', ul, 'master', 'ulbr', 'up']);
      await ns.execOk(['ip', 'link', 'set', 'eth1', 'up']);
      await ok(['ovsdb-tool', 'create', join(dir, 'conf.db'), OVS_SCHEMA]);
      await this.daemon(['ovsdb-server', join(dir, 'conf.db'), `--remote=punix:${join(dir, 'db.sock')}`, `--unixctl=${join(dir, 'ovsdb-server.ctl')}`, `--log-file=${join(dir, 'ovsdb-server.log')}`], join(dir, 'ovsdb-server.pid'), chassis.env);
      await chassis.vsctl(['--no-wait', 'init']);
      await chassis.vsctl(['--no-wait', 'set', 'Open_vSwitch', '.', `external_ids:system-id=${name}`, `external_ids:hostname=${name}`,
        `external_ids:ovn-remote=${this.sbDb}`, 'external_ids:ovn-encap-type=geneve', `external_ids:ovn-encap-ip=${encapIp}`,
        'external_ids:ovn-bridge=br-int', 'external_ids:ovn-bridge-datapath-type=netdev']);
      // vswitchd runs inside the chassis netns: netdev ports are looked up by name there.
      await this.daemon(['ovs-vswitchd', `unix:${join(dir, 'db.sock')}`, `--unixctl=${join(dir, 'ovs-vswitchd.ctl')}`, `--log-file=${join(dir, 'ovs-vswitchd.log')}`], join(dir, 'ovs-vswitchd.pid'), chassis.env, ns);
      await chassis.vsctl(['--', 'add-br', 'br-int', '--', 'set', 'bridge', 'br-int', 'datapath_type=netdev', 'fail-mode=secure', 'other_config:disable-in-band=true']);
      await chassis.vsctl(['--', 'add-br', 'br-phy', '--', 'set', 'bridge', 'br-phy', 'datapath_type=netdev', '--', 'add-port', 'br-phy', 'eth1']);
      await ns.execOk(['ip', 'addr', 'add', `${encapIp}/24`, 'dev', 'br-phy']);
      await ns.execOk(['ip', 'link', 'set', 'br-phy', 'up']);
      await run(['env', ...Object.entries(chassis.env).map(([k, v]) => `${k}=${v}`), 'ovs-appctl', '-t', join(dir, 'ovs-vswitchd.ctl'), 'ovs/route/add', `${encapIp}/24`, 'br-phy']);
      await this.daemon(['ovn-controller', `unix:${join(dir, 'db.sock')}`, `--log-file=${join(dir, 'ovn-controller.log')}`], join(dir, 'ovn-controller.pid'), chassis.env, ns);
      await waitFor(async () => (await this.sbctl(['--bare', '--columns=name', 'find', 'Chassis', `name=${name}`])).stdout.includes(name), { timeoutMs: 30_000, intervalMs: 50, what: `chassis ${name} in the SB` });
      return chassis;
    } catch (err) {
      this.chassis.push(chassis); // stop() takes down what was started of it
      throw err;
    }
  }

  private async topology(): Promise<void> {
    await this.nbctl(['ls-add', POD_SUBNET.switch, '--', 'set', 'logical_switch', POD_SUBNET.switch, `other_config:subnet=${POD_SUBNET.cidr}`]);
    await this.nbctl(['lr-add', 'ovn_cluster_router']);
    await this.nbctl(['lrp-add', 'ovn_cluster_router', `rtos-${POD_SUBNET.switch}`, POD_SUBNET.routerMac, `${POD_SUBNET.gateway}/${POD_SUBNET.prefix}`]);
    await this.nbctl(['lsp-add', POD_SUBNET.switch, `stor-${POD_SUBNET.switch}`, '--', 'set', 'logical_switch_port', `stor-${POD_SUBNET.switch}`, 'type=router',
      `options:router-port=rtos-${POD_SUBNET.switch}`, 'addresses="router"']);
    await this.nbctl(['ls-add', L2_SUBNET.switch, '--', 'set', 'logical_switch', L2_SUBNET.switch, `other_config:subnet=${L2_SUBNET.cidr}`]);
  }

  /**
   * A pod as OVN-K's CNI makes it: LSP (addresses + port security) unless noLsp, a veth host end on br-int with
   * iface-id, eth0 in the pod with the MAC, MTU 1400, the address and the default route, tx checksum offload off; waits
   * for ovn-installed unless noWait.
   */
  async addPod(o: OvnPodOptions): Promise<OvnPod> {
    const network = o.network ?? 'pods';
    const subnet = network === 'pods' ? POD_SUBNET : L2_SUBNET;
    const mac = o.mac ?? ovnMac(o.ip);
    hostIfCounter += 1;
    const lsp = o.lsp ?? `pod-${process.pid}-${hostIfCounter}`;
    const hostIf = `ovn${hostIfCounter}-${process.pid % 10000}`.slice(0, 15);
    const ifname = o.ifname ?? 'eth0';
    if (!o.noLsp) {
      await this.nbctl(['--may-exist', 'lsp-add', subnet.switch, lsp, '--', 'lsp-set-addresses', lsp, `${mac} ${o.ip}`, '--', 'lsp-set-port-security', lsp, `${mac} ${o.ip}`]);
    }
    const ns = o.into ?? (await makeNetns('ovn-pod'));
    const pod: OvnPod = { ns, chassis: o.chassis, lsp, hostIf, ifname, ip: o.ip, mac, cidr: `${o.ip}/${subnet.prefix}`, ownsNetns: o.into === undefined };
    this.pods.push(pod);
    const node = o.chassis.ns;
    await node.execOk(['ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns.name]);
    await ns.execOk(['ip', 'link', 'set', ifname, 'address', mac, 'mtu', '1400']);
    if (!o.noIp) await ns.execOk(['ip', 'addr', 'add', pod.cidr, 'dev', ifname]);
    // The userspace datapath reads the host end with AF_PACKET and forwards partial checksums as they are.
    await ns.execOk(['ethtool', '-K', ifname, 'tx', 'off']);
    await ns.execOk(['ip', 'link', 'set', ifname, 'up']);
    if (!o.noIp && network === 'pods' && ifname === 'eth0') await ns.execOk(['ip', 'route', 'add', 'default', 'via', POD_SUBNET.gateway]);
    await node.execOk(['ip', 'link', 'set', hostIf, 'up']);
    await o.chassis.vsctl(['--', 'add-port', 'br-int', hostIf, '--', 'set', 'interface', hostIf, `external_ids:iface-id=${lsp}`, `external_ids:sandbox=${ns.name}`, `external_ids:ip_addresses=${pod.cidr}`]);
    if (!o.noWait) await this.waitInstalled(pod);
    return pod;
  }

  waitInstalled(pod: OvnPod, timeoutMs = 30_000): Promise<void> {
    return waitFor(() => pod.chassis.installed(pod.hostIf), { timeoutMs, intervalMs: 50, what: `ovn-installed on ${pod.hostIf} (${pod.lsp}) at ${pod.chassis.name}` });
  }

  /** Unplugs a pod: its port off br-int, its veth and (if it made it) its netns gone. The LSP stays unless deleteLsp. */
  async removePod(pod: OvnPod, options: { deleteLsp?: boolean } = {}): Promise<void> {
    const i = this.pods.indexOf(pod);
    if (i >= 0) this.pods.splice(i, 1);
    await pod.chassis.vsctl(['--if-exists', 'del-port', 'br-int', pod.hostIf]).catch(() => undefined);
    await pod.chassis.ns.exec(['ip', 'link', 'del', pod.hostIf]);
    if (pod.ownsNetns) await deleteNetns(pod.ns.name);
    if (options.deleteLsp) await this.nbctl(['--if-exists', 'lsp-del', pod.lsp]);
  }

  /** Port_Binding columns of an LSP (chassis and additional_chassis as chassis names, options as text). */
  async binding(lsp: string): Promise<{ chassis: string[]; additional: string[]; options: string }> {
    const names = async (column: string): Promise<string[]> => {
      const uuids = (await this.sbctl(['--bare', `--columns=${column}`, 'find', 'Port_Binding', `logical_port=${lsp}`])).stdout.trim().split(/\s+/).filter(Boolean);
      const out: string[] = [];
      for (const uuid of uuids) out.push((await this.sbctl(['--bare', '--columns=name', 'list', 'Chassis', uuid])).stdout.trim());
      return out;
    };
    const options = (await this.sbctl(['--bare', '--columns=options', 'find', 'Port_Binding', `logical_port=${lsp}`])).stdout.trim();
    return { chassis: await names('chassis'), additional: await names('additional_chassis'), options };
  }

  /** OVN native DHCPv4 for the pods subnet on `lsp` (server = the router port), as OVN-K's DHCP for VMs. */
  async enableDhcp(lsp: string): Promise<void> {
    let uuid = (await this.nbctl(['--bare', '--columns=_uuid', 'find', 'dhcp_options', `cidr="${POD_SUBNET.cidr}"`])).stdout.trim();
    if (uuid === '') {
      uuid = (await this.nbctl(['create', 'dhcp_options', `cidr="${POD_SUBNET.cidr}"`])).stdout.trim();
      await this.nbctl(['dhcp-options-set-options', uuid, `server_id=${POD_SUBNET.gateway}`, `server_mac=${POD_SUBNET.routerMac}`, 'lease_time=3600', `router=${POD_SUBNET.gateway}`, 'mtu=1400', `dns_server=${POD_SUBNET.gateway}`]);
    }
    await this.nbctl(['lsp-set-dhcpv4-options', lsp, uuid]);
  }

  /** Stops everything: pods' veths and netns, controllers, vswitchds, chassis dbs, northd, NB/SB; removes the dir. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    // Controllers first (no flow churn while the rest goes), then vswitchd, then the databases.
    for (const c of this.chassis) await attempt(`${c.name} ovn-controller`, () => stopDaemon(join(c.dir, 'ovn-controller.pid')));
    for (const c of this.chassis) await attempt(`${c.name} ovs-vswitchd`, () => stopDaemon(join(c.dir, 'ovs-vswitchd.pid')));
    for (const c of this.chassis) await attempt(`${c.name} ovsdb-server`, () => stopDaemon(join(c.dir, 'ovsdb-server.pid')));
    const c = this.centralDir;
    for (const name of ['ovn-northd', 'ovnnb_db', 'ovnsb_db']) await attempt(name, () => stopDaemon(join(c, `${name}.pid`)));
    for (const pod of [...this.pods].reverse()) if (pod.ownsNetns) await attempt(`pod ${pod.ns.name}`, () => deleteNetns(pod.ns.name));
    this.pods.length = 0;
    for (const ch of this.chassis) await attempt(`chassis netns ${ch.ns.name}`, () => deleteNetns(ch.ns.name));
    if (this.underlay) await attempt('underlay netns', () => deleteNetns(this.underlay!.name));
    rmSync(this.dir, { recursive: true, force: true });
    if (errors.length > 0) throw new Error(`OVN harness stop: ${errors.join('; ')}`);
  }

  /** ovn-trace on a logical switch with a microflow (for tests of the harness itself). */
  trace(datapath: string, microflow: string): Promise<ExecResult> {
    return ok(['ovn-trace', `--db=${this.sbDb}`, '--minimal', datapath, microflow]);
  }
}
