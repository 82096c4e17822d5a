// The passt socket dir is writable by passt's user (here the launcher's, 107): a symlink it plants at passt.log must neither make root create a file elsewhere nor let passt (uid 0 while it opens its log) write into a root file, before or after a restart.
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPasstSupervisor, type PasstSupervisor } from '../../agent/passt/supervisor.js';
import { asLauncher, LAUNCHER_UID } from '../helpers/attacker.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';

const log = pino({ level: 'silent' });
const RUN_AS = { uid: LAUNCHER_UID, gid: LAUNCHER_UID };

describe.skipIf(!netnsAvailable())('security: the passt socket dir against its own user', { timeout: 300_000 }, () => {
  let cni: CniPod | undefined;
  let work = '';
  let supervisor: PasstSupervisor | undefined;

  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'vna-sec-passt-'));
    chmodSync(work, 0o755);
    cni = await makeCniPod({ podCidr: '10.244.65.0/24' });
  }, 120_000);

  afterEach(async () => {
    await supervisor?.stop().catch(() => undefined);
    supervisor = undefined;
    await cni?.cleanup();
    cni = undefined;
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('passt.log planted as a symlink (dangling, and to a root file) in a socket dir the user owns: nothing outside is created or written', async () => {
    const host = join(work, 'host');
    mkdirSync(host, { mode: 0o755 });
    const victim = join(host, 'victim');
    writeFileSync(victim, 'victim\n', { mode: 0o600 });
    const created = join(host, 'created-by-root');
    // The socket dir as an older version left it: the user's own. It plants passt.log -> a place root would create.
    const socketDir = join(work, 'run');
    mkdirSync(socketDir, { mode: 0o755 });
    chownSync(socketDir, LAUNCHER_UID, LAUNCHER_UID);
    const plant = await asLauncher('ln -s "$CREATED" "$D/passt.log"', { CREATED: created, D: socketDir });
    expect(plant.code, plant.stderr).toBe(0);

    supervisor = await startPasstSupervisor({ netnsPath: cni!.pod.path, socketDir, portArgs: ['-t', '8080'], runAs: RUN_AS, backoff: { initialMs: 100, maxMs: 1_000 }, log });
    await supervisor.ready(90_000);
    expect(existsSync(created)).toBe(false);
    const logStat = lstatSync(supervisor.logFile);
    expect([logStat.isFile(), logStat.uid]).toEqual([true, 0]);
    await waitFor(async () => readFileSync(supervisor!.logFile, 'utf8').includes('passt'), { timeoutMs: 30_000, intervalMs: 100, what: "passt's log" });

    // Now the user tries to swap the log for a symlink to a root file, then kills passt so that it reopens it.
    const swap = await asLauncher('rm -f "$D/passt.log"; ln -sf "$VICTIM" "$D/x" && mv -f "$D/x" "$D/passt.log"; ln -sf "$VICTIM" "$D/passt.log"', { VICTIM: victim, D: socketDir });
    const first = supervisor.pid()!;
    process.kill(first, 'SIGKILL');
    await waitFor(async () => supervisor?.pid() !== undefined && supervisor.pid() !== first, { timeoutMs: 90_000, intervalMs: 100, what: 'passt to be restarted' });
    await supervisor.ready(90_000);
    expect(readFileSync(victim, 'utf8')).toBe('victim\n');
    expect(lstatSync(supervisor.logFile).isFile()).toBe(true);
    expect(swap.stderr).toMatch(/Operation not permitted|Permission denied/);
    const dir = statSync(socketDir);
    expect([dir.uid, dir.gid, dir.mode & 0o7777]).toEqual([0, LAUNCHER_UID, 0o1775]);
  });

  it('a log file in a folder others may write is refused in one line', async () => {
    const open = join(work, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    const err = await startPasstSupervisor({ netnsPath: cni!.pod.path, socketDir: join(work, 'run2'), logFile: join(open, 'passt.log'), portArgs: [], runAs: RUN_AS, log }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe(`${open} (mode 777, owner 0) may be written by others: passt opens its log there by path as root; use a folder only root can write (or the socket dir)`);
    expect(existsSync(join(open, 'passt.log'))).toBe(false);
  });
});
