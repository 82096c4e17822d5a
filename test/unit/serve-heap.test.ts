// When serve re-executes itself with its node flags, and with which argv (agent/cli/serve-heap.ts; the execv itself is
// exercised by the serve integration tests, which check the running process's command line).
import { describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS, SERVE_NODE_FLAGS, needsHeapReexec, reexecArgv } from '../../agent/cli/serve-heap.js';

describe('serve heap re-exec', () => {
  it('is needed unless the flag is set in node argv or NODE_OPTIONS, or the opt-out is given', () => {
    expect(needsHeapReexec([], {})).toBe(true);
    expect(needsHeapReexec(['--enable-source-maps'], { NODE_OPTIONS: '--max-old-space-size=100' })).toBe(true);
    expect(needsHeapReexec([...SERVE_NODE_FLAGS], {})).toBe(false);
    expect(needsHeapReexec(['--single-threaded'], {})).toBe(true);
    expect(needsHeapReexec(['--max-semi-space-size=8'], {})).toBe(false);
    expect(needsHeapReexec(['--max_semi_space_size=8'], {})).toBe(false);
    expect(needsHeapReexec([], { NODE_OPTIONS: '--trace-gc --max-semi-space-size=4' })).toBe(false);
    expect(needsHeapReexec([], { VIRT_NET_AGENT_SERVE_REEXEC: '0' })).toBe(false);
    expect(needsHeapReexec([], { VIRT_NET_AGENT_SERVE_REEXEC: '1' })).toBe(true);
  });

  it('keeps node, its flags, the script and every argument, with the serve flags first', () => {
    expect(reexecArgv('/usr/bin/node', ['--cpu-prof'], ['/usr/bin/node', '/opt/vna/dist/virt-net-agent.mjs', 'serve', '--netns', '/run/netns/p'])).toEqual([
      '/usr/bin/node',
      '--max-semi-space-size=1',
      '--single-threaded',
      '--cpu-prof',
      '/opt/vna/dist/virt-net-agent.mjs',
      'serve',
      '--netns',
      '/run/netns/p',
    ]);
  });

  it("gives the cni-daemon serve's flags, before its own node flags (--expose-gc, --import …) and its arguments", () => {
    expect(DAEMON_NODE_FLAGS).toEqual(SERVE_NODE_FLAGS);
    expect(reexecArgv('/usr/bin/node', ['--expose-gc'], ['/usr/bin/node', 'dist/virt-net-agent.mjs', 'cni-daemon', '--config', 'c.yaml'], DAEMON_NODE_FLAGS)).toEqual([
      '/usr/bin/node',
      '--max-semi-space-size=1',
      '--single-threaded',
      '--expose-gc',
      'dist/virt-net-agent.mjs',
      'cni-daemon',
      '--config',
      'c.yaml',
    ]);
  });
});
