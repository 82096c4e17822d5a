// Bench-only instrumentation preloaded into the measured cni-daemon (node --expose-gc --import this): on SIGUSR2 a full
// garbage collection, then one JSON line {"gcHeapUsed": bytes} on stderr. Not part of the product: the daemon itself
// has no such hook; the memory bench needs a full GC before each PSS sample (rows-serving.ts).
process.on('SIGUSR2', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  process.stderr.write(`${JSON.stringify({ gcHeapUsed: gc === undefined ? null : process.memoryUsage().heapUsed })}\n`);
});
