// `sidecar --serve`: the DHCPv4/DHCPv6/RA services of the networks OnDefineDomain planned, run in the sidecar's own process (one Node process per VM).
//
// Started on the first OnDefineDomain that plans a service (on a migration target too: virt-launcher calls the hook
// there before the switchover); a later call that plans the same configuration keeps them running, one that plans
// another restarts that network's services. The log lines are serve's (pino JSON on stdout, one per exchange).
import { pino, type Logger } from 'pino';
import type { Plan } from '../plan/plan-types.js';
import { LOG_LEVEL_ENV, serveLoggerOptions } from './cmd-serve.js';
import { planned, ServingCore, type ServedNetwork } from '../serve/core.js';

/** The sidecar's serving core: one attachment per served network (id: the network name), in the sidecar's namespace. */
export class SidecarServices {
  /** Per network name, the configuration served (JSON of its state). */
  private readonly running = new Map<string, string>();
  private core: ServingCore | null = null;
  private logger: Logger | null = null;
  /** One update at a time: OnDefineDomain calls do not interleave their starts and stops. */
  private queue: Promise<void> = Promise.resolve();

  update(plan: Plan): Promise<void> {
    const next = this.queue.then(() => this.apply(plan));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private loggerFor(plan: Plan): Logger {
    if (this.logger === null) {
      const vmi = plan.vmi ?? { name: '', namespace: '', uid: '' };
      this.logger = pino(serveLoggerOptions(vmi, process.env[LOG_LEVEL_ENV] ?? 'info'));
    }
    return this.logger;
  }

  private async apply(plan: Plan): Promise<void> {
    const wanted: ServedNetwork[] = plan.networks
      .map((network) => ({ name: network.name, state: { bridge: network.bridge, dhcp: network.dhcp, dhcpv6: network.dhcpv6 } }))
      .filter(planned);
    const logger = this.loggerFor(plan);
    this.core ??= new ServingCore({ logger });
    const core = this.core;
    for (const [name, config] of this.running) {
      const network = wanted.find((entry) => entry.name === name);
      if (network !== undefined && JSON.stringify(network.state) === config) continue;
      await core.remove(name);
      this.running.delete(name);
    }
    for (const network of wanted) {
      if (this.running.has(network.name)) continue;
      const served = await core.add({ id: network.name, netns: null, networks: [network] });
      this.running.set(network.name, JSON.stringify(network.state));
      logger.info({ network: network.name, services: served.services }, 'serving');
    }
  }

  async close(): Promise<void> {
    await this.queue;
    this.running.clear();
    await this.core?.close();
  }
}
