// Issue 26, hole 8 (stack traces): a CNI error never carries a stack trace (runtimes copy CNI errors into pod events, which the tenant reads); the stack goes to the log.
import { describe, expect, it } from 'vitest';
import { defaultAgentConfig, type AgentConfig } from '../../agent/cni/agent-config.js';
import { handleCniInvocation } from '../../agent/cni/invocation.js';

describe('CNI errors carry no stack traces (hole 8)', () => {
  it('an internal error is answered with its message only; the stack is reported beside the answer', async () => {
    // A bug inside the plugin, as any unexpected exception: here the configuration itself throws when read.
    const agent = new Proxy(defaultAgentConfig(), {
      get(target, key) {
        if (key === 'stateRoot') throw new TypeError('boom inside the plugin');
        return target[key as keyof AgentConfig];
      },
    });
    const reported: Record<string, unknown>[] = [];
    const r = await handleCniInvocation(
      { env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: '' }, stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'virt-net-agent' }) },
      agent,
      (msg, fields) => reported.push({ msg, ...fields }),
    );
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.0.0', code: 5, msg: 'internal error: boom inside the plugin' });
    expect(r.stdout).not.toMatch(/\bat \S+ \(|\.js:\d+/);
    expect(reported).toEqual([{ msg: 'internal error in the plugin', err: 'boom inside the plugin', stack: expect.stringContaining('TypeError: boom inside the plugin') }]);
  });
});
