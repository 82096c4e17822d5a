// nftables in-process through libnftables.so.1 (koffi): the same commands as the nft binary (`-f -`, `list ruleset`)
// without starting a process for each; nft itself is a thin shell over this library.
//
// - Synchronous on the calling thread, so it runs in that thread's network namespace: the context (and its netlink
//   socket) is made inside `runIn` (NetnsScope.run) for every call and freed after it.
// - Output and errors are buffered by the library. A ruleset is run from the buffer; only when it is refused is it run
//   again from a private temporary file, because for a buffer the library reports no file:line:column (and echoes the
//   wrong line); the error is the file run's first line with the file named "/dev/stdin", word for word what
//   `nft -f -` prints.
// - loadLibNftables() returns null when the library is missing: the caller then uses the binary (agent/drivers/nft.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { KernelError } from './kernel-error.js';
import { firstLine, type Nft } from './nft.js';

type Pointer = unknown;

interface LibNftables {
  ctxNew(flags: number): Pointer;
  ctxFree(ctx: Pointer): void;
  bufferOutput(ctx: Pointer): number;
  bufferError(ctx: Pointer): number;
  outputBuffer(ctx: Pointer): string | null;
  errorBuffer(ctx: Pointer): string | null;
  runFromBuffer(ctx: Pointer, text: string): number;
  runFromFile(ctx: Pointer, path: string): number;
}

const NFT_CTX_DEFAULT = 0;

let loaded: LibNftables | null | undefined;

/** Binds libnftables.so.1 once; null when it cannot be loaded (not installed, another soname). */
export function loadLibNftables(): LibNftables | null {
  if (loaded !== undefined) return loaded;
  try {
    const lib = koffi.load('libnftables.so.1');
    const ctx = koffi.opaque('nft_ctx');
    const ctxPtr = koffi.pointer(ctx);
    loaded = {
      ctxNew: lib.func('nft_ctx_new', ctxPtr, ['uint32_t']) as LibNftables['ctxNew'],
      ctxFree: lib.func('nft_ctx_free', 'void', [ctxPtr]) as LibNftables['ctxFree'],
      bufferOutput: lib.func('nft_ctx_buffer_output', 'int', [ctxPtr]) as LibNftables['bufferOutput'],
      bufferError: lib.func('nft_ctx_buffer_error', 'int', [ctxPtr]) as LibNftables['bufferError'],
      outputBuffer: lib.func('nft_ctx_get_output_buffer', 'const char *', [ctxPtr]) as LibNftables['outputBuffer'],
      errorBuffer: lib.func('nft_ctx_get_error_buffer', 'const char *', [ctxPtr]) as LibNftables['errorBuffer'],
      runFromBuffer: lib.func('nft_run_cmd_from_buffer', 'int', [ctxPtr, 'const char *']) as LibNftables['runFromBuffer'],
      runFromFile: lib.func('nft_run_cmd_from_filename', 'int', [ctxPtr, 'const char *']) as LibNftables['runFromFile'],
    };
  } catch {
    loaded = null;
  }
  return loaded;
}

/** The library's first error line, with the ruleset file named as `nft -f -` names its input. */
function firstErrorLine(text: string, file: string | null): string {
  const line = firstLine(text);
  return file !== null && line.startsWith(`${file}:`) ? `/dev/stdin:${line.slice(file.length + 1)}` : line;
}

/** Runs a command (a buffer) or a ruleset (a file) in a fresh context; returns the buffered output or throws. */
function runInContext(lib: LibNftables, runIn: <T>(fn: () => T) => T, input: { command: string } | { file: string }, op: string): string {
  return runIn(() => {
    const ctx = lib.ctxNew(NFT_CTX_DEFAULT);
    if (ctx === null) throw new KernelError(op, null, 'libnftables: nft_ctx_new failed');
    try {
      if (lib.bufferOutput(ctx) !== 0 || lib.bufferError(ctx) !== 0) throw new KernelError(op, null, 'libnftables: cannot buffer output');
      const status = 'file' in input ? lib.runFromFile(ctx, input.file) : lib.runFromBuffer(ctx, input.command);
      if (status !== 0) {
        const message = firstErrorLine(lib.errorBuffer(ctx) ?? '', 'file' in input ? input.file : null);
        throw new KernelError(op, null, message || `libnftables: ${op} failed (status ${status})`);
      }
      return lib.outputBuffer(ctx) ?? '';
    } finally {
      lib.ctxFree(ctx);
    }
  });
}

/**
 * Applies a ruleset text: from the buffer first (no folder and file to make and remove: ~0.3 ms per apply here);
 * when the library refuses it, again from a private temporary file (removed afterwards), which changes nothing more
 * (a refused ruleset is not applied: one transaction) and gives the error its file:line:column as `nft -f -` prints it.
 */
function applyRuleset(lib: LibNftables, runIn: <T>(fn: () => T) => T, text: string): void {
  try {
    runInContext(lib, runIn, { command: text }, 'nft -f');
    return;
  } catch (err) {
    if (!(err instanceof KernelError)) throw err;
  }
  const dir = mkdtempSync(join(tmpdir(), 'vna-nft-'));
  try {
    const file = join(dir, 'ruleset.nft');
    writeFileSync(file, text, { mode: 0o600 });
    runInContext(lib, runIn, { file }, 'nft -f');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The Nft interface over the library, or null when it is not available. */
export function createLibNft(runIn: <T>(fn: () => T) => T = (fn) => fn()): Nft | null {
  const lib = loadLibNftables();
  if (lib === null) return null;
  return {
    apply: async (rulesetText) => applyRuleset(lib, runIn, rulesetText),
    list: async () => runInContext(lib, runIn, { command: 'list ruleset' }, 'nft list ruleset'),
  };
}
