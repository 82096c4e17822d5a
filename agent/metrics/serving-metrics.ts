// The DHCP and router-advertisement counters of whatever serving core runs in this process (cni-daemon, serve), as Prometheus counters read at scrape time.
import { Counter, type Registry } from 'prom-client';
import { messageCounts } from '../../dhcp/message-counters.js';

export const METRIC_PREFIX = 'virt_net_agent_';

/** Registers virt_net_agent_dhcp_messages_total{family,type,result} and virt_net_agent_router_advertisements_total. */
export function registerServingMetrics(registry: Registry): void {
  new Counter({
    name: `${METRIC_PREFIX}dhcp_messages_total`,
    help: 'DHCPv4/DHCPv6 messages from guests handled by this process, by family (v4, v6), message type and result (replied, ignored, logged: RELEASE/DECLINE, dropped: undecodable).',
    labelNames: ['family', 'type', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { family, type, result, count } of messageCounts().dhcp) this.inc({ family, type, result }, count);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}router_advertisements_total`,
    help: 'IPv6 router advertisements sent to guests by this process (periodic, initial and solicited).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(messageCounts().routerAdvertisements);
    },
  });
}
