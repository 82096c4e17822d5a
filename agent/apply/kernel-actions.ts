// Kernel actions: the concrete writes that turn the current pod state into the plan's (printed by --dry-run).

/** Links are named, not indexed: the executor resolves names when the action runs (earlier actions rename/create). */
export type KernelAction =
  | { readonly do: 'create-bridge'; readonly link: string; readonly mac: string }
  | { readonly do: 'create-keeper'; readonly link: string; readonly keeperKind: 'dummy' | 'bridge' }
  | { readonly do: 'create-tap'; readonly link: string; readonly queues: number; readonly owner: { readonly uid: number; readonly gid: number } }
  | {
      readonly do: 'set-link';
      readonly link: string;
      readonly name?: string;
      readonly mac?: string;
      readonly mtu?: number;
      /** Name of the new master, or null to release. */
      readonly master?: string | null;
      readonly up?: boolean;
    }
  | { readonly do: 'set-learning'; readonly link: string; readonly learning: boolean }
  | { readonly do: 'add-address'; readonly link: string; readonly cidr: string }
  | { readonly do: 'delete-address'; readonly link: string; readonly cidr: string }
  | { readonly do: 'add-route'; readonly link: string; readonly dst: string; readonly gw?: string; readonly family: 4 | 6 }
  | { readonly do: 'set-neighbour'; readonly link: string; readonly ip: string; readonly mac: string }
  | { readonly do: 'delete-link'; readonly link: string }
  /** Several links deleted in one kernel batch (teardown). */
  | { readonly do: 'delete-links'; readonly links: readonly string[] }
  | { readonly do: 'write-sysctl'; readonly name: string; readonly value: string }
  | { readonly do: 'apply-nft'; readonly text: string };

export function describeAction(action: KernelAction): string {
  switch (action.do) {
    case 'create-bridge':
      return `create bridge ${action.link} (mac ${action.mac})`;
    case 'create-keeper':
      return `create ${action.keeperKind} ${action.link} (identity keeper)`;
    case 'create-tap':
      return `create tap ${action.link} (queues ${action.queues}, owner ${action.owner.uid}:${action.owner.gid})`;
    case 'set-link': {
      const parts = [
        action.name !== undefined ? `name ${action.name}` : '',
        action.mac !== undefined ? `mac ${action.mac}` : '',
        action.mtu !== undefined ? `mtu ${action.mtu}` : '',
        action.master !== undefined ? (action.master === null ? 'nomaster' : `master ${action.master}`) : '',
        action.up !== undefined ? (action.up ? 'up' : 'down') : '',
      ].filter(Boolean);
      return `set link ${action.link} ${parts.join(' ')}`;
    }
    case 'set-learning':
      return `set bridge port ${action.link} learning ${action.learning ? 'on' : 'off'}`;
    case 'add-address':
      return `add address ${action.cidr} to ${action.link}`;
    case 'delete-address':
      return `delete address ${action.cidr} from ${action.link}`;
    case 'add-route':
      return `add route ${action.dst}${action.gw ? ` via ${action.gw}` : ''} dev ${action.link}`;
    case 'set-neighbour':
      return `set neighbour ${action.ip} lladdr ${action.mac} dev ${action.link} nud reachable`;
    case 'delete-link':
      return `delete link ${action.link}`;
    case 'delete-links':
      return `delete links ${action.links.join(', ')} (one kernel batch)`;
    case 'write-sysctl':
      return `sysctl ${action.name}=${action.value}`;
    case 'apply-nft':
      return `nft -f (${action.text.split('\n').filter(Boolean).length} statements, one transaction)`;
  }
}
