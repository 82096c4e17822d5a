// Reading the agent's input documents (VMI, pod state, KubeVirt config, domain XML) from files or stdin, with one-line errors.
import { readFile } from 'node:fs/promises';
import { InputError } from '../plan/errors.js';
import type { PodState } from '../plan/pod-state.js';
import { parsePodState } from '../plan/pod-state-parse.js';

/** The path that means "read standard input". */
export const STDIN_PATH = '-';

/** Inputs are small (a VMI, a pod description); anything bigger is a mistake such as `--vmi /dev/zero`. */
const MAX_INPUT_BYTES = 16 * 1024 * 1024;

/** How a path is named in messages. */
export function sourceName(path: string): string {
  return path === STDIN_PATH ? 'stdin' : path;
}

const READ_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
};

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').trim();
}

async function readStdin(field: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > MAX_INPUT_BYTES) throw new InputError(field, `stdin is larger than ${MAX_INPUT_BYTES} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads a whole text file, or stdin for "-". Errors name the flag and the file:
 * `--vmi: cannot read /x.yaml: no such file`.
 */
export async function readTextFile(path: string, field: string): Promise<string> {
  if (path === '') throw new InputError(field, 'needs a file name (or - for stdin)');
  let text: string;
  if (path === STDIN_PATH) {
    try {
      text = await readStdin(field);
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw new InputError(field, `cannot read stdin: ${errorCode(err) ?? firstLine(String(err))}`);
    }
  } else {
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      const code = errorCode(err);
      const why = (code !== undefined ? READ_ERRORS[code] : undefined) ?? code ?? firstLine(String(err));
      throw new InputError(field, `cannot read ${path}: ${why}`);
    }
    if (buf.length > MAX_INPUT_BYTES) throw new InputError(field, `${path} is larger than ${MAX_INPUT_BYTES} bytes`);
    text = buf.toString('utf8');
  }
  // A UTF-8 byte order mark is legal at the start of YAML and JSON files written by some editors.
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

/** The yaml package appends " at line L, column C:" and a source excerpt; keep only the sentence. */
function cleanYamlMessage(message: string): string {
  return firstLine(message).replace(/ at line \d+, column \d+:?$/, '');
}

function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  const start = text.trimStart()[0];
  if (start !== '{' && start !== '[') return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    // Not strict JSON: YAML (a superset) parses it below and reports the line and column.
    return { ok: false };
  }
}

type YamlModule = typeof import('yaml');

/**
 * The yaml package's API. Node hands a CommonJS package's named exports to import(); the esbuild bundle
 * (scripts/bundle.mjs, code splitting) hands only its module.exports as `default`.
 */
async function loadYaml(): Promise<YamlModule> {
  const loaded = (await import('yaml')) as YamlModule & { default?: YamlModule };
  return typeof loaded.parseAllDocuments === 'function' ? loaded : (loaded.default ?? loaded);
}

/**
 * Reads one YAML or JSON document from a file or "-" (stdin).
 * Throws InputError(field, …) when the file cannot be read, does not parse, is empty or holds several documents.
 */
export async function readDocument(path: string, field: string): Promise<unknown> {
  const text = await readTextFile(path, field);
  const name = sourceName(path);
  const json = tryJson(text);
  if (json.ok) {
    if (json.value === null) throw new InputError(field, `${name} is empty (expected one YAML or JSON document)`);
    return json.value;
  }

  const language = path.toLowerCase().endsWith('.json') ? 'JSON' : 'YAML';
  // Loaded only for YAML: JSON input (what virt-handler passes) starts without the YAML parser.
  const { isScalar, parseAllDocuments } = await loadYaml();
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  for (const doc of docs) {
    const first = doc.errors[0];
    if (first === undefined) continue;
    const pos = first.linePos?.[0];
    const where = pos !== undefined ? ` at line ${pos.line}, column ${pos.col}` : '';
    const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more)` : '';
    throw new InputError(field, `invalid ${language}${where}: ${cleanYamlMessage(first.message)}${more}`);
  }
  // "---" separators around a single document are common (kubectl, Helm): a document that is only a separator,
  // or only an explicit null, does not count.
  const withContent = docs.filter((doc) => doc.contents !== null && !(isScalar(doc.contents) && doc.contents.value === null));
  if (withContent.length === 0) throw new InputError(field, `${name} is empty (expected one YAML or JSON document)`);
  if (withContent.length > 1) {
    throw new InputError(field, `${name} holds ${withContent.length} YAML documents; ${field} takes exactly one`);
  }
  const doc = withContent[0]!;
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    // Self-referencing aliases (&a [*a]) build a circular structure that nothing downstream can walk.
    JSON.stringify(value);
  } catch (err) {
    const msg = firstLine(err instanceof Error ? err.message : String(err));
    const why = /circular/i.test(msg) ? 'an alias refers to its own anchor (circular structure)' : msg;
    throw new InputError(field, `invalid ${language}: ${why}`);
  }
  if (value === null || value === undefined) {
    throw new InputError(field, `${name} is empty (expected one YAML or JSON document)`);
  }
  return value;
}

/** Reads and checks a pod state file (the output of `discover`), or stdin for "-". */
export async function readPodState(path: string, field = '--pod'): Promise<PodState> {
  return parsePodState(await readDocument(path, field));
}
