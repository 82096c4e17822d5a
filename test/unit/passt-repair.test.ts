// passt-repair migration hook with fake passt-repair binaries: success, failure, hang past the timeout, missing binary, source/target arguments.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PasstRepair, findRepairSocket } from '../../agent/passt/repair.js';

const log = pino({ level: 'silent' });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('passt-repair hook', () => {
  let dir = '';
  let passtDir = '';
  const script = (name: string, body: string): string => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vna-repair-'));
    passtDir = join(dir, 'passt');
    mkdirSync(passtDir);
    writeFileSync(join(passtDir, 'passt.log'), '');
    writeFileSync(join(passtDir, 'ua-default.socket'), '');
    writeFileSync(join(passtDir, 'ua-default.socket.repair'), '');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('source: runs passt-repair on the *.socket.repair socket of the passt dir', async () => {
    const args = join(dir, 'args-source');
    const ok = script('ok-source', `echo "$@" > ${args}; exit 0`);
    const outcome = await new PasstRepair({ log, binary: ok }).source('ns/vmi', passtDir);
    expect(outcome).toEqual({ status: 'ok', arg: join(passtDir, 'ua-default.socket.repair') });
    expect(readFileSync(args, 'utf8').trim()).toBe(join(passtDir, 'ua-default.socket.repair'));
  });

  it('target: runs passt-repair on the passt dir itself', async () => {
    const args = join(dir, 'args-target');
    const ok = script('ok-target', `echo "$@" > ${args}; exit 0`);
    const outcome = await new PasstRepair({ log, binary: ok }).target('ns/vmi', passtDir);
    expect(outcome).toEqual({ status: 'ok', arg: passtDir });
    expect(readFileSync(args, 'utf8').trim()).toBe(passtDir);
  });

  it('a failing passt-repair is reported (exit code and output), never thrown', async () => {
    const bad = script('bad', 'echo "Failed to connect: No such file" >&2; exit 3');
    const outcome = await new PasstRepair({ log, binary: bad }).target('ns/vmi', passtDir);
    expect(outcome).toMatchObject({ status: 'failed', exitCode: 3, output: 'Failed to connect: No such file' });
  });

  it('a passt-repair that hangs past the timeout is killed with its children', async () => {
    const pids = join(dir, 'pids');
    // The script and a child both hang; the timeout must take the whole process group.
    const hang = script('hang', `sleep 600 & echo "$$ $!" > ${pids}; wait`);
    const started = Date.now();
    const outcome = await new PasstRepair({ log, binary: hang, timeoutMs: 5_000 }).target('ns/vmi', passtDir);
    expect(outcome.status).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(5_000);
    const [shell, sleeper] = readFileSync(pids, 'utf8').trim().split(' ').map(Number);
    for (const pid of [shell, sleeper]) {
      await expect.poll(() => alive(pid ?? 0), { timeout: 10_000, interval: 50 }).toBe(false);
    }
  });

  it('a missing passt-repair binary is reported as such', async () => {
    const outcome = await new PasstRepair({ log, binary: join(dir, 'no-such-passt-repair') }).source('ns/vmi', passtDir);
    expect(outcome).toEqual({ status: 'missing-binary', arg: join(passtDir, 'ua-default.socket.repair'), binary: join(dir, 'no-such-passt-repair') });
  });

  it('source without a repair socket does not run anything', async () => {
    const marker = join(dir, 'ran');
    const ok = script('ok-marker', `touch ${marker}`);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const outcome = await new PasstRepair({ log, binary: ok }).source('ns/vmi', empty);
    expect(outcome).toEqual({ status: 'no-repair-socket', dir: empty });
    expect(existsSync(marker)).toBe(false);
    expect(await findRepairSocket(join(dir, 'no-such-dir'))).toBeNull();
  });

  it('one run per VMI at a time: a second request while one runs is ignored; other VMIs are not blocked', async () => {
    const slow = script('slow', 'sleep 1');
    const repair = new PasstRepair({ log, binary: slow, timeoutMs: 10_000 });
    const first = repair.target('ns/a', passtDir);
    const second = await repair.target('ns/a', passtDir);
    expect(second).toEqual({ status: 'already-running' });
    const other = repair.target('ns/b', passtDir);
    expect((await first).status).toBe('ok');
    expect((await other).status).toBe('ok');
    // Finished: the next request runs again.
    expect((await repair.target('ns/a', passtDir)).status).toBe('ok');
  });

  it('the default timeout is KubeVirt\'s 60 s', async () => {
    const { PASST_REPAIR_TIMEOUT_MS } = await import('../../agent/passt/repair.js');
    expect(PASST_REPAIR_TIMEOUT_MS).toBe(60_000);
  });
});
