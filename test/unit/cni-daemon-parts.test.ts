// The cni-daemon's pure parts: the request accumulator (chunked input, early refusal, no re-joining) and the invocation locks (which invocations may overlap).
import { describe, expect, it } from 'vitest';
import { decodeRequest, encodeRequest, FramingError, MAGIC, MAX_ENV_BYTES, RequestAccumulator } from '../../agent/cni/framing.js';
import { acquireAll, LockTable, locksFor } from '../../agent/cni/invocation-locks.js';

describe('RequestAccumulator', () => {
  const request = encodeRequest({ env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', X: 'ü'.repeat(1000) }, stdin: JSON.stringify({ name: 'n', pad: 'x'.repeat(100_000) }) });

  it('gives the request once complete, whatever the chunking (one byte at a time too)', () => {
    for (const size of [1, 7, 4096, request.length]) {
      const acc = new RequestAccumulator();
      let got = null;
      let early = 0;
      for (let off = 0; off < request.length; off += size) {
        if (got !== null) early++;
        got = acc.push(request.subarray(off, off + size));
      }
      expect(early).toBe(0);
      expect(got).toEqual(decodeRequest(request));
      expect(acc.bytes).toBe(request.length);
    }
  });

  it('refuses a wrong magic as soon as its bytes are in, and an oversized length before the body arrives', () => {
    const bad = new RequestAccumulator();
    expect(bad.push(Buffer.from('GET '))).toBeNull();
    expect(() => bad.push(Buffer.from('/ HTTP/1.0\r\n'))).toThrow(FramingError);
    const head = Buffer.alloc(MAGIC.length + 4);
    MAGIC.copy(head);
    head.writeUInt32BE(MAX_ENV_BYTES + 1, MAGIC.length);
    expect(() => new RequestAccumulator().push(head)).toThrow(/environment of \d+ bytes exceeds/);
  });

  it('bytes after the request are a framing error, as before', () => {
    expect(() => new RequestAccumulator().push(Buffer.concat([request, Buffer.from('x')]))).toThrow(/bytes after the request/);
  });
});

describe('invocation locks', () => {
  const conf = JSON.stringify({ name: 'podnet' });
  const order: string[] = [];
  async function hold(table: LockTable, what: string, env: Record<string, string>, until: Promise<void>): Promise<void> {
    const release = await acquireAll(table, locksFor(env, conf));
    order.push(`start ${what}`);
    await until;
    order.push(`end ${what}`);
    release();
  }

  it('ADD/DEL/CHECK of one pod wait for each other; different pods do not; GC waits for its network; VERSION takes none', async () => {
    expect(locksFor({ CNI_COMMAND: 'VERSION' }, '')).toEqual([]);
    expect(locksFor({ CNI_COMMAND: 'STATUS' }, conf)).toEqual([]);
    expect(locksFor({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'a' }, conf)).toEqual([
      { key: 'network "podnet"', mode: 'shared' },
      { key: 'pod "a"', mode: 'exclusive' },
    ]);
    expect(locksFor({ CNI_COMMAND: 'GC' }, conf)).toEqual([{ key: 'network "podnet"', mode: 'exclusive' }]);

    const table = new LockTable();
    let finishA: () => void = () => undefined;
    const a = new Promise<void>((r) => (finishA = r));
    const runs = [
      hold(table, 'ADD a', { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'a' }, a),
      hold(table, 'ADD b', { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'b' }, Promise.resolve()),
      hold(table, 'DEL a', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'a' }, Promise.resolve()),
      hold(table, 'GC', { CNI_COMMAND: 'GC' }, Promise.resolve()),
      hold(table, 'ADD c', { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c' }, Promise.resolve()),
    ];
    await new Promise((r) => setTimeout(r, 20));
    // b ran beside a; DEL a waits for ADD a; GC waits for everything on its network; ADD c, arriving after the GC, waits for it.
    expect(order).toEqual(['start ADD a', 'start ADD b', 'end ADD b']);
    finishA();
    await Promise.all(runs);
    expect(order.slice(3)).toEqual(['end ADD a', 'start DEL a', 'end DEL a', 'start GC', 'end GC', 'start ADD c', 'end ADD c']);
    expect(table.size()).toBe(0);
  });
});
