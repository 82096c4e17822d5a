// The minimal chained plugin's input checks (agent/cni/chained.ts): spec error codes for bad input, and a DEL that always lets the chain go on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { handleCniInvocation } from '../../agent/cni/invocation.js';

const ENV = { CNI_CONTAINERID: 'c1', CNI_NETNS: '/nonexistent/netns', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const CONF = { cniVersion: '1.0.0', name: 'net', type: 'virt-net-agent', prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/nonexistent/netns' }] } };

async function code(command: string, stdin: string, env: Record<string, string> = ENV): Promise<{ code: number; msg: string; exit: number }> {
  const r = await handleCniInvocation({ env: { ...env, CNI_COMMAND: command }, stdin });
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
    const r = await handleCniInvocation({ env: { ...ENV, CNI_COMMAND: 'ADD' }, stdin: JSON.stringify({ ...CONF, stateDir: '/tmp/vna-unit-never' }) });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 4, msg: expect.stringMatching(/^CNI_NETNS: /) });
    expect(r.stdout).toContain('/nonexistent/netns');
  });
});

describe('chained DEL', () => {
  it('succeeds without netns and without state, twice, and with a binding an ADD would refuse', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'vna-cni-del-'));
    try {
      for (const conf of [{ ...CONF, stateDir }, { ...CONF, stateDir }, { ...CONF, stateDir, binding: 'nonsense' }]) {
        expect(await code('DEL', JSON.stringify(conf))).toEqual({ code: 0, msg: '', exit: 0 });
      }
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
