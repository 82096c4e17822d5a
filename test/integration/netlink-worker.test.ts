// Link deletions on the netlink worker thread (the cni-daemon's): answered once the kernel has unlisted the links, finished in the thread, refusals mapped like the main thread's.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { openNetnsScope } from '../../agent/apply/netns.js';
import { KernelError } from '../../agent/drivers/kernel-error.js';
import { createNetlinkDriver } from '../../agent/drivers/netlink-driver.js';
import { setBackgroundNetlink, startNetlinkWorker, type NetlinkWorker } from '../../agent/drivers/netlink-worker.js';
import { Rtnl } from '../../agent/drivers/rtnl.js';
import { netnsAvailable, withNetns } from '../helpers/netns.js';

const T = 60_000;

function linkNames(ns: string): string[] {
  const links = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
  return links.map((l) => l.ifname);
}

async function withWorker<R>(fn: (worker: NetlinkWorker) => Promise<R>): Promise<R> {
  const worker = await startNetlinkWorker();
  setBackgroundNetlink(worker);
  try {
    return await fn(worker);
  } finally {
    setBackgroundNetlink(null);
    await worker.close();
  }
}

describe.skipIf(!netnsAvailable())('netlink worker thread', () => {
  it(
    'deleteLinks returns with the tap and bridge gone from the namespace and their names free; the thread finishes the call',
    () =>
      withNetns('nlw', (ns) =>
        withWorker(async (worker) => {
          const d = createNetlinkDriver({ netns: { netnsPath: ns.path } });
          try {
            await d.createBridge('k6t-eth0');
            await d.createTap('tap0', { queues: 1, owner: { uid: 0, gid: 0 } });
            const bridge = await d.linkIndex('k6t-eth0');
            const tap = await d.linkIndex('tap0');
            if (bridge === null || tap === null) throw new Error('links not created');
            await d.setLink(tap, { master: bridge, up: true });
            await d.setLink(bridge, { up: true });
            await d.deleteLinks([tap, bridge]);
            expect(worker.exchanged()).toBe(1);
            // Answered: nothing of them is listed, and a new link may take a name at once.
            expect(await d.linkIndex('tap0')).toBeNull();
            expect(await d.linkIndex('k6t-eth0')).toBeNull();
            expect(linkNames(ns.name)).not.toContain('tap0');
            await d.createBridge('k6t-eth0');
            expect(await d.linkIndex('k6t-eth0')).not.toBeNull();
          } finally {
            d.close();
          }
          // close() waits for the call still in the thread (the kernel's grace periods).
          await worker.close();
          expect(worker.pending()).toBe(0);
          expect(linkNames(ns.name).sort()).toEqual(['k6t-eth0', 'lo']);
        }),
      ),
    T,
  );

  it(
    "a refusal on the thread is the kernel's error, as on the main thread",
    () =>
      withNetns('nlw', (ns) =>
        withWorker(async (worker) => {
          const scope = openNetnsScope({ netnsPath: ns.path });
          const rtnl = scope.run(() => Rtnl.open());
          try {
            // No link carries this group: the kernel answers ENODEV, as `ip link del group 12345` reports.
            const err: unknown = await rtnl.deleteGroupInWorker(12345, 'group 12345', worker).catch((e: unknown) => e);
            expect(err).toBeInstanceOf(KernelError);
            expect((err as KernelError).code).toBe('ENODEV');
            expect((err as KernelError).op).toBe('netlink: delete links group 12345');
            expect(worker.exchanged()).toBe(1);
            expect(worker.pending()).toBe(0);
          } finally {
            rtnl.close();
            scope.close();
          }
        }),
      ),
    T,
  );

  it(
    'without a worker, deleteLinks blocks as before and leaves the same state',
    () =>
      withNetns('nlw', async (ns) => {
        const d = createNetlinkDriver({ netns: { netnsPath: ns.path } });
        try {
          await d.createBridge('k6t-eth0');
          await d.createTap('tap0', { queues: 1, owner: { uid: 0, gid: 0 } });
          const indices = [await d.linkIndex('tap0'), await d.linkIndex('k6t-eth0')].filter((i): i is number => i !== null);
          await d.deleteLinks(indices);
          expect(linkNames(ns.name)).toEqual(['lo']);
        } finally {
          d.close();
        }
      }),
    T,
  );
});
