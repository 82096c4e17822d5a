// The shim ↔ cni-daemon wire format: one request (environment + stdin) and one response (exit code + stdout) per connection.
//
// All integers are u32 big-endian. The same layout is written by agent/cni/shim/cni-shim.c and documented in
// docs/cni-runtime.md:
//   request:  "VNACNI1\n" envLen env stdinLen stdin      env = "KEY=VALUE\0" for every variable the shim was given
//   response: "VNACNI1\n" exitCode stdoutLen stdout
import type { CniInvocation, CniOutcome } from './invocation.js';

export const MAGIC = Buffer.from('VNACNI1\n', 'latin1');
/** Upper bounds a well-behaved runtime never reaches; a larger length is a framing error, not an allocation. */
export const MAX_ENV_BYTES = 1 << 20;
export const MAX_STDIN_BYTES = 16 << 20;

export class FramingError extends Error {
  override readonly name = 'FramingError';
}

/** The environment block as a record; a variable without '=' is ignored, a repeated one keeps its first value (like getenv). */
function parseEnv(block: Buffer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of block.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    if (!(key in env)) env[key] = entry.slice(eq + 1);
  }
  return env;
}

/**
 * Decodes a request from the bytes received so far: the invocation when complete, null when more bytes are needed.
 * Throws FramingError for a wrong magic or an oversized length.
 */
export function decodeRequest(buf: Buffer): CniInvocation | null {
  if (buf.length >= MAGIC.length && !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new FramingError('bad magic (not a virt-net-agent shim request)');
  let off = MAGIC.length;
  if (buf.length < off + 4) return null;
  const envLen = buf.readUInt32BE(off);
  if (envLen > MAX_ENV_BYTES) throw new FramingError(`environment of ${envLen} bytes exceeds ${MAX_ENV_BYTES}`);
  off += 4;
  if (buf.length < off + envLen + 4) return null;
  const env = parseEnv(buf.subarray(off, off + envLen));
  off += envLen;
  const stdinLen = buf.readUInt32BE(off);
  if (stdinLen > MAX_STDIN_BYTES) throw new FramingError(`stdin of ${stdinLen} bytes exceeds ${MAX_STDIN_BYTES}`);
  off += 4;
  if (buf.length < off + stdinLen) return null;
  if (buf.length > off + stdinLen) throw new FramingError(`${buf.length - off - stdinLen} bytes after the request`);
  return { env, stdin: buf.subarray(off, off + stdinLen).toString('utf8') };
}

/**
 * Collects a request arriving in chunks without joining them again for every chunk (the lengths are read from the
 * few header bytes; the chunks are joined once, when the request is complete). Checks the magic and the lengths as
 * soon as their bytes are in, so a wrong or oversized request is refused before it is read.
 */
export class RequestAccumulator {
  private readonly chunks: Buffer[] = [];
  private received = 0;
  /** The request's whole length once both lengths are known. */
  private total: number | null = null;

  get bytes(): number {
    return this.received;
  }

  /** `n` bytes from `offset` (which the caller knows have arrived), copied out of the chunks. */
  private peek(offset: number, n: number): Buffer {
    const out = Buffer.alloc(n);
    let skip = offset;
    let filled = 0;
    for (const chunk of this.chunks) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      filled += chunk.copy(out, filled, skip, Math.min(chunk.length, skip + n - filled));
      skip = 0;
      if (filled === n) break;
    }
    return out;
  }

  /** Adds a chunk; the invocation once complete, null while more bytes are needed. Throws FramingError. */
  push(chunk: Buffer): CniInvocation | null {
    const before = this.received;
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (before < MAGIC.length && this.received >= MAGIC.length && !this.peek(0, MAGIC.length).equals(MAGIC)) {
      throw new FramingError('bad magic (not a virt-net-agent shim request)');
    }
    if (this.total === null) {
      const envAt = MAGIC.length;
      if (this.received < envAt + 4) return null;
      const envLen = this.peek(envAt, 4).readUInt32BE(0);
      if (envLen > MAX_ENV_BYTES) throw new FramingError(`environment of ${envLen} bytes exceeds ${MAX_ENV_BYTES}`);
      const stdinAt = envAt + 4 + envLen;
      if (this.received < stdinAt + 4) return null;
      const stdinLen = this.peek(stdinAt, 4).readUInt32BE(0);
      if (stdinLen > MAX_STDIN_BYTES) throw new FramingError(`stdin of ${stdinLen} bytes exceeds ${MAX_STDIN_BYTES}`);
      this.total = stdinAt + 4 + stdinLen;
    }
    if (this.received < this.total) return null;
    return decodeRequest(this.chunks.length === 1 ? this.chunks[0] ?? Buffer.alloc(0) : Buffer.concat(this.chunks, this.received));
  }
}

export function encodeRequest(invocation: CniInvocation): Buffer {
  const env = Buffer.from(
    Object.entries(invocation.env)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => `${k}=${v}\0`)
      .join(''),
    'utf8',
  );
  const stdin = Buffer.from(invocation.stdin, 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(env.length);
  const mid = Buffer.alloc(4);
  mid.writeUInt32BE(stdin.length);
  return Buffer.concat([MAGIC, head, env, mid, stdin]);
}

export function encodeResponse(outcome: CniOutcome): Buffer {
  const stdout = Buffer.from(outcome.stdout, 'utf8');
  const head = Buffer.alloc(8);
  head.writeUInt32BE(outcome.exitCode >>> 0, 0);
  head.writeUInt32BE(stdout.length, 4);
  return Buffer.concat([MAGIC, head, stdout]);
}

/** Decodes a complete response (tests and the bench client); null while incomplete. */
export function decodeResponse(buf: Buffer): CniOutcome | null {
  if (buf.length < MAGIC.length + 8) return null;
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new FramingError('bad magic in the response');
  const exitCode = buf.readUInt32BE(MAGIC.length);
  const len = buf.readUInt32BE(MAGIC.length + 4);
  if (buf.length < MAGIC.length + 8 + len) return null;
  return { exitCode, stdout: buf.subarray(MAGIC.length + 8, MAGIC.length + 8 + len).toString('utf8') };
}
