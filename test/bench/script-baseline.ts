// The shell-script baselines, generated from the agent's own kernel actions so they do the same work:
// "batch" = one `ip -batch` + one `nft -f` (+ sysctls by shell redirection), "per-step" = one ip/nft process per step (KubeVirt's way).
import type { KernelAction } from '../../agent/apply/kernel-actions.js';

/** The `ip` command line (without "ip") for a link/address/route action; null for sysctl and nft actions. */
export function ipCommand(action: KernelAction): string | null {
  switch (action.do) {
    case 'create-bridge':
      return `link add ${action.link} address ${action.mac} type bridge`;
    case 'create-keeper':
      return `link add ${action.link} type ${action.keeperKind}`;
    case 'create-tap':
      return `tuntap add dev ${action.link} mode tap user ${action.owner.uid} group ${action.owner.gid}${action.queues > 1 ? ' multi_queue' : ''}`;
    case 'set-link': {
      const parts = [
        action.name !== undefined ? `name ${action.name}` : '',
        action.mac !== undefined ? `address ${action.mac}` : '',
        action.mtu !== undefined ? `mtu ${action.mtu}` : '',
        action.master !== undefined ? (action.master === null ? 'nomaster' : `master ${action.master}`) : '',
        action.up !== undefined ? (action.up ? 'up' : 'down') : '',
      ].filter(Boolean);
      return `link set dev ${action.link} ${parts.join(' ')}`;
    }
    case 'set-learning':
      return `link set dev ${action.link} type bridge_slave learning ${action.learning ? 'on' : 'off'}`;
    case 'add-address':
      return `addr add ${action.cidr} dev ${action.link}`;
    case 'delete-address':
      return `addr del ${action.cidr} dev ${action.link}`;
    case 'add-route':
      return `${action.family === 6 ? '-6 ' : ''}route add ${action.dst}${action.gw ? ` via ${action.gw}` : ''} dev ${action.link}`;
    case 'set-neighbour':
      return `neigh replace ${action.ip} lladdr ${action.mac} dev ${action.link} nud reachable`;
    case 'delete-link':
      return `link del ${action.link}`;
    case 'delete-links':
      return action.links.map((link) => `link del ${link}`).join('\n');
    case 'write-sysctl':
    case 'apply-nft':
      return null;
  }
}

function sysctlLine(action: Extract<KernelAction, { do: 'write-sysctl' }>): string {
  // net.ipv4.conf.k6t-eth0.route_localnet → /proc/sys/net/ipv4/conf/k6t-eth0/route_localnet (interface names have no dots here).
  return `echo ${action.value} > /proc/sys/${action.name.replace(/\./g, '/')}`;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export interface BatchScript {
  /** The `ip -batch` file. */
  readonly ipBatch: string;
  /** The `nft -f` file ("" when there is none). */
  readonly nft: string;
  /** The sh script; refers to the two files by the given paths. */
  readonly script: string;
}

/** One ip -batch for all link/address/route steps, then the sysctls, then one nft -f. */
export function batchScript(actions: readonly KernelAction[], ipBatchPath: string, nftPath: string): BatchScript {
  const ipLines = actions.map(ipCommand).filter((l): l is string => l !== null);
  const sysctls = actions.flatMap((a) => (a.do === 'write-sysctl' ? [sysctlLine(a)] : []));
  const nft = actions.flatMap((a) => (a.do === 'apply-nft' ? [a.text] : [])).join('');
  const script = ['set -e', ...(ipLines.length > 0 ? [`ip -batch ${ipBatchPath}`] : []), ...sysctls, ...(nft !== '' ? [`nft -f ${nftPath}`] : [])];
  return { ipBatch: `${ipLines.join('\n')}\n`, nft, script: `${script.join('\n')}\n` };
}

/** KubeVirt's way: one `ip` process per link step and one `nft` process per ruleset statement. */
export function perStepScript(actions: readonly KernelAction[]): string {
  const lines = ['set -e'];
  for (const action of actions) {
    const ip = ipCommand(action);
    if (ip !== null) lines.push(`ip ${ip}`);
    else if (action.do === 'write-sysctl') lines.push(sysctlLine(action));
    else if (action.do === 'apply-nft') {
      for (const statement of action.text.split('\n')) if (statement.trim() !== '') lines.push(`nft ${shellQuote(statement)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Processes each script starts (besides sh itself). */
export function processCount(script: string): number {
  return script.split('\n').filter((l) => /^(ip|nft) /.test(l)).length;
}
