// Scheduling-stall probe for benchmark rows: a 10 ms timer in the (mostly idle) bench process; how late it fires shows
// how long this machine ran nothing of ours, which bounds any tail latency or drop figure measured meanwhile.

export interface StallReport {
  /** Timer firings later than the threshold. */
  readonly count: number;
  readonly maxMs: number;
  readonly seconds: number;
}

const TICK_MS = 10;

/** Starts watching; stop() returns what was seen since. */
export function watchStalls(thresholdMs = 100): { stop(): StallReport } {
  const started = process.hrtime.bigint();
  let last = started;
  let count = 0;
  let maxMs = 0;
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    const late = Number(now - last) / 1e6 - TICK_MS;
    last = now;
    if (late > thresholdMs) count++;
    maxMs = Math.max(maxMs, late);
  }, TICK_MS);
  return {
    stop(): StallReport {
      clearInterval(timer);
      return { count, maxMs, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
    },
  };
}

export function describeStalls(report: StallReport, thresholdMs = 100): string {
  return `the bench process itself was not scheduled for > ${thresholdMs} ms ${report.count}× in ${report.seconds.toFixed(0)} s (longest ${report.maxMs.toFixed(0)} ms)`;
}
