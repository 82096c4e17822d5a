// The agent configuration (agent/cni/agent-config.ts): defaults, every setting checked with the file and key named, a file others can write refused when root.
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultAgentConfig, loadAgentConfig, parseAgentConfig } from '../../agent/cni/agent-config.js';
import { parseNetConf } from '../../agent/cni/config.js';
import { CniSpecError } from '../../agent/cni/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vna-agent-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as { oneLine?: () => string }).oneLine?.() ?? (error as Error).message;
  }
  throw new Error('no error thrown');
}

describe('parseAgentConfig', () => {
  it('an empty file is the defaults; YAML and JSON both read', () => {
    expect(parseAgentConfig('', '/c.yaml')).toEqual({ ...defaultAgentConfig(), source: '/c.yaml' });
    expect(defaultAgentConfig()).toMatchObject({ stateRoot: '/var/run/virt-net-agent/cni', kubeconfig: null, vmiDir: null, allowInsecureApi: false, socket: '/run/virt-net-agent/cni.sock' });
    const yaml = 'stateRoot: /srv/state\nkubeconfig: /etc/kc\nvmiDir: /srv/vmis\nallowInsecureApi: true\nmaxFileBytes: 5000\n';
    expect(parseAgentConfig(yaml, '/c.yaml')).toMatchObject({ stateRoot: '/srv/state', kubeconfig: '/etc/kc', vmiDir: '/srv/vmis', allowInsecureApi: true, maxFileBytes: 5000 });
    expect(parseAgentConfig('{"kubeconfig": null, "socket": "/run/x.sock"}', '/c.json')).toMatchObject({ kubeconfig: null, socket: '/run/x.sock' });
    const groups = (name: string): number | null => (name === 'vna-shims' ? 4242 : null);
    expect(parseAgentConfig('socketGroup: vna-shims\ninvocationTimeoutMs: 5000\n', '/c.yaml', groups)).toMatchObject({ socketGroup: 4242, invocationTimeoutMs: 5000 });
    expect(parseAgentConfig('socketGroup: 0', '/c.yaml', groups)).toMatchObject({ socketGroup: 0 });
    expect(message(() => parseAgentConfig('socketGroup: nosuchgroup', '/c.yaml', groups))).toBe('/c.yaml: socketGroup: no group named "nosuchgroup" in /etc/group');
  });

  it('names the file and the setting of every bad value', () => {
    expect(message(() => parseAgentConfig('stateRoot: relative', '/c.yaml'))).toBe('/c.yaml: stateRoot: must be an absolute path, got "relative"');
    expect(message(() => parseAgentConfig('stateDir: /x', '/c.yaml'))).toMatch(/^\/c\.yaml: stateDir: unknown setting \(known: stateRoot, /);
    expect(message(() => parseAgentConfig('allowInsecureApi: "yes"', '/c.yaml'))).toBe('/c.yaml: allowInsecureApi: must be true or false');
    expect(message(() => parseAgentConfig(`socket: /${'s'.repeat(120)}`, '/c.yaml'))).toMatch(/^\/c\.yaml: socket: path of 121 bytes is longer/);
    expect(message(() => parseAgentConfig('maxFileBytes: 0', '/c.yaml'))).toMatch(/^\/c\.yaml: maxFileBytes: must be an integer from 1/);
    expect(message(() => parseAgentConfig('vmiDir: "/a\\nb"', '/c.yaml'))).toBe('/c.yaml: vmiDir: contains a control character');
    expect(message(() => parseAgentConfig('[1, 2]', '/c.yaml'))).toMatch(/^\/c\.yaml: must be a mapping/);
    expect(message(() => parseAgentConfig('a: [', '/c.yaml'))).toMatch(/^\/c\.yaml: not YAML\/JSON/);
  });
});

describe('loadAgentConfig', () => {
  it('reads a named file; a missing named file is an error, a relative name too', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'stateRoot: /srv/vna\n', { mode: 0o644 });
    expect(loadAgentConfig(file)).toMatchObject({ source: file, stateRoot: '/srv/vna' });
    expect(message(() => loadAgentConfig(join(dir, 'none.yaml')))).toBe(`${join(dir, 'none.yaml')}: cannot read the agent configuration: ENOENT`);
    expect(message(() => loadAgentConfig('config.yaml'))).toMatch(/^config\.yaml: the agent configuration must be named by an absolute path/);
  });

  it.runIf(process.getuid?.() === 0)('as root: refuses a file owned by another user or writable by group/others, and a FIFO without blocking', async () => {
    const file = join(dir, 'loose.yaml');
    writeFileSync(file, 'stateRoot: /srv/vna\n');
    chmodSync(file, 0o664);
    expect(message(() => loadAgentConfig(file))).toBe(`${file}: writable by its group (mode 0664): refusing a configuration a less privileged user can change`);
    chmodSync(file, 0o646);
    expect(message(() => loadAgentConfig(file))).toMatch(/writable by others \(mode 0646\)/);
    chmodSync(file, 0o644);
    chownSync(file, 107, 107);
    expect(message(() => loadAgentConfig(file))).toBe(`${file}: owned by uid 107, not root: refusing a configuration a less privileged user can change`);
    const { execFileSync } = await import('node:child_process');
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    expect(message(() => loadAgentConfig(fifo))).toBe(`${fifo}: a FIFO, not a regular file (not read)`);
  });
});

describe('the network configuration', () => {
  const BASE = { cniVersion: '1.0.0', name: 'n', type: 'virt-net-agent', prevResult: { cniVersion: '1.0.0', interfaces: [] } };
  it.each(['stateDir', 'kubeconfig', 'vmiPath'])('refuses %s (error 7 naming it) for ADD/CHECK/STATUS, ignores it for DEL/GC', (field) => {
    for (const command of ['ADD', 'CHECK', 'STATUS'] as const) {
      let error: unknown;
      try {
        parseNetConf(JSON.stringify({ ...BASE, [field]: '/etc/shadow' }), command);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CniSpecError);
      expect((error as CniSpecError).code).toBe(7);
      expect((error as CniSpecError).message).toMatch(new RegExp(`^${field}: a network configuration cannot name host paths or credentials: this setting moved to the agent configuration`));
    }
    for (const command of ['DEL', 'GC'] as const) expect(() => parseNetConf(JSON.stringify({ ...BASE, [field]: '/etc/shadow' }), command)).not.toThrow();
  });
});
