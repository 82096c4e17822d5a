// Test helper process: runs the DHCPv6 server and the router advertiser for one DhcpV6Plan inside the current netns.
//
// Usage (compiled): ip netns exec POD node dist/test/helpers/dhcp-v6-serve.js PLAN.json
// PLAN.json is a DhcpV6Plan. Prints pino JSON lines on stdout, "READY" once both services run; on SIGTERM closes both
// (the advertiser sends its final lifetime-0 RA), prints "CLOSED" and exits 0.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import type { DhcpV6Plan } from '../../agent/plan/plan-types.js';
import { ServingCore } from '../../agent/serve/core.js';

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: dhcp-v6-serve PLAN.json\n');
  process.exit(2);
}
const plan = JSON.parse(readFileSync(file, 'utf8')) as DhcpV6Plan;
const logger = pino({ level: 'debug' });
const core = new ServingCore({ logger });
await core.add({ id: 'v6', netns: null, networks: [{ name: 'default', state: { bridge: plan.interface, dhcpv6: plan } }] });
process.stdout.write('READY\n');

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void core.close().then(() => {
    process.stdout.write('CLOSED\n');
    process.exit(0);
  });
});
