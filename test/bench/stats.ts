// Benchmark statistics (median, p90) and the interleaved runner: every contender runs once per round, in rotating order.

export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  // Nearest-rank: the smallest sample with at least q of the samples at or below it.
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

export const median = (samples: readonly number[]): number => quantile(samples, 0.5);
export const p90 = (samples: readonly number[]): number => quantile(samples, 0.9);

export interface Contender {
  readonly name: string;
  /** One measured run; returns the figure (ms, Gbit/s, …). Preparation that is not measured happens inside, untimed. */
  run(round: number): Promise<number>;
}

/**
 * Runs every contender once per round, rotating who goes first, so load changes on a shared machine hit all of them
 * alike. Returns the samples per contender name.
 */
export async function interleave(contenders: readonly Contender[], rounds: number): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const contender = contenders[(round + k) % contenders.length];
      if (contender === undefined) continue;
      samples.get(contender.name)?.push(await contender.run(round));
    }
  }
  return samples;
}

/** Milliseconds since `start` (from process.hrtime.bigint()). */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}
