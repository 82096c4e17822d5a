// The minimal chained plugin's input checks (agent/cni/chained.ts): spec error codes for bad input, and a DEL that always lets the chain go on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultAgentConfig, type AgentConfig } from '../../agent/cni/agent-config.js';
import { handleCniInvocation } from '../../agent/cni/invocation.js';

const ENV = { CNI_CONTAINERID: 'c1', CNI_NETNS: '/nonexistent/netns', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const CONF = { cniVersion: '1.0.0', name: 'net', type: 'virt-net-agent', prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/nonexistent/netns' }] } };

/** These checks fail before any state is touched: the state root does not exist unless a test makes one. */
const NO_STATE: AgentConfig = { ...defaultAgentConfig(), stateRoot: '/nonexistent/vna-unit' };

async function code(command: string, stdin: string, env: Record<string, string> = ENV, agent = NO_STATE): Promise<{ code: number; msg: string; exit: number }> {
  const r = await handleCniInvocation({ env: { ...env, CNI_COMMAND: command }, stdin }, agent);
  const body = (r.stdout === '' ? {} : JSON.parse(r.stdout)) as { code?: number; msg?: string };
  return { code: body.code ?? 0, msg: body.msg ?? '', exit: r.exitCode };
}

describe('chained ADD/CHECK input', () => {
  it('not JSON: 6; unsupported cniVersion: 1; bad binding, no prevResult, other ifname: 7; missing CNI_NETNS: 4', async () => {
    expect(await code('ADD', '{nope')).toMatchObject({ code: 6, exit: 1 });
    expect(await code('ADD', JSON.stringify({ ...CONF, cniVersion: '0.3.1' }))).toMatchObject({ code: 1, msg: expect.stringContaining('cniVersion') });
    expect(await code('ADD', JSON.stringify({ ...CONF, binding: 'sriov' }))).toMatchObject({ code: 7, msg: expect.stringContaining('binding') });
    expect(await code('ADD', JSON.stringify({ ...CONF, prevResult: undefined }))).toMatchObject({ code: 7, msg: expect.stringContaining('prevResult') });
    expect(await code('ADD', JSON.stringify(CONF), { ...ENV, CNI_IFNAME: 'net1' })).toMatchObject({ code: 7, msg: expect.stringContaining('CNI_IFNAME') });
    expect(await code('CHECK', JSON.stringify(CONF), { ...ENV, CNI_NETNS: '' })).toMatchObject({ code: 4, msg: expect.stringContaining('CNI_NETNS') });
  });

  it('a missing netns on ADD is a spec error (4, invalid environment) naming it, not a crash', async () => {
    const r = await handleCniInvocation({ env: { ...ENV, CNI_COMMAND: 'ADD' }, stdin: JSON.stringify(CONF) }, NO_STATE);
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 4, msg: expect.stringMatching(/^CNI_NETNS: /) });
    expect(r.stdout).toContain('/nonexistent/netns');
  });
});

describe('chained DEL', () => {
  it('succeeds without netns and without state, twice, and with a binding an ADD would refuse', async () => {
    const stateRoot = mkdtempSync(join(tmpdir(), 'vna-cni-del-'));
    try {
      // A stateDir left in an old network configuration is ignored by DEL (refusing it would stop the chain's DEL).
      for (const conf of [CONF, CONF, { ...CONF, binding: 'nonsense' }, { ...CONF, stateDir: '/elsewhere' }]) {
        expect(await code('DEL', JSON.stringify(conf), ENV, { ...NO_STATE, stateRoot })).toEqual({ code: 0, msg: '', exit: 0 });
      }
    } finally {
      rmSync(stateRoot, { recursive: true, force: true });
    }
  });
});
