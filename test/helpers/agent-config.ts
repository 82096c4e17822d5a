// Test isolation for the CNI plugin: an agent configuration file of the test's own (state root inside its mkdtemp), as the admin's /etc/virt-net-agent/config.yaml would be.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

let counter = 0;

/**
 * Writes `<dir>/agent-config-N.json` (JSON is YAML too) with `stateRoot: <dir>/state` unless `settings` says
 * otherwise, root-owned 0644 like a ConfigMap file, and returns its path for `cni --config`, VIRT_NET_AGENT_CONFIG
 * or `cni-daemon --config`.
 */
export function writeAgentConfig(dir: string, settings: Readonly<Record<string, unknown>> = {}): string {
  const file = join(dir, `agent-config-${process.pid}-${++counter}.json`);
  writeFileSync(file, `${JSON.stringify({ stateRoot: join(dir, 'state'), ...settings }, null, 2)}\n`, { mode: 0o644 });
  return file;
}
