// `sidecar --serve`: the DHCPv4/DHCPv6/RA services of the networks OnDefineDomain planned, run in the sidecar's own process (one Node process per VM).
//
// Started on the first OnDefineDomain that plans a service (on a migration target too: virt-launcher calls the hook
// there before the switchover); a later call that plans the same configuration keeps them running, one that plans
// another restarts that network's services. The log lines are serve's (pino JSON on stdout, one per exchange).
import { pino, type Logger } from 'pino';
import type { RunningService } from '../../dhcp/service.js';
import type { Plan } from '../plan/plan-types.js';
import { LOG_LEVEL_ENV, serveLoggerOptions } from './cmd-serve.js';
import { planned, startAll, type ServedNetwork } from './serve-services.js';

interface Running {
  readonly config: string;
  readonly services: readonly RunningService[];
}

export class SidecarServices {
  private readonly running = new Map<string, Running>();
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
    for (const [name, running] of this.running) {
      const network = wanted.find((entry) => entry.name === name);
      if (network !== undefined && JSON.stringify(network.state) === running.config) continue;
      await Promise.all(running.services.map((service) => service.close()));
      this.running.delete(name);
    }
    for (const network of wanted) {
      if (this.running.has(network.name)) continue;
      const services = await startAll([network], logger);
      this.running.set(network.name, { config: JSON.stringify(network.state), services });
      logger.info({ network: network.name, services: services.map((service) => service.name) }, 'serving');
    }
  }

  async close(): Promise<void> {
    await this.queue;
    const all = [...this.running.values()].flatMap((running) => running.services);
    this.running.clear();
    await Promise.all(all.map((service) => service.close()));
  }
}
