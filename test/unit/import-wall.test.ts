// The architecture as a test: the pure core (agent/plan, bindings, the domain XML, the DHCP codecs) imports no driver,
// file system, socket, process or libvirt module, and no source file takes part in an import cycle.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const SOURCE_DIRS = ['agent', 'bindings', 'dhcp', 'domain'];

/** The DHCP files that own sockets and logging (the servers); every other file of dhcp/ is a codec or a pure responder. */
const DHCP_SERVERS = new Set(['dhcp/server-v4.ts', 'dhcp/v6-server.ts', 'dhcp/ra-server.ts', 'dhcp/service.ts', 'dhcp/exchange-log.ts', 'dhcp/receive-gate.ts']);

/** Bare modules the pure core may use: hashing (MAC and name derivation), createRequire (lazy loading), the XML builder. */
const PURE_BARE_ALLOWED = new Set(['node:crypto', 'node:module', 'xmlbuilder2']);

function isPure(file: string): boolean {
  if (file.startsWith('agent/plan/') || file.startsWith('bindings/')) return true;
  if (file.startsWith('domain/')) return !file.startsWith('domain/libvirt/');
  if (file.startsWith('dhcp/')) return !DHCP_SERVERS.has(file);
  return false;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Drops comments (and keeps string literals intact) so a path mentioned in a comment is not read as an import. */
export function stripComments(text: string): string {
  return text.replace(/("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (match, literal: string | undefined) =>
    literal ?? (match.startsWith('/*') ? match.replace(/[^\n]/g, ' ') : ''),
  );
}

interface ImportEdge {
  readonly specifier: string;
  /** `import type …` / `export type …`: erased at compile time, no run-time dependency. */
  readonly typeOnly: boolean;
}

export function importsOf(text: string): ImportEdge[] {
  const code = stripComments(text);
  const edges: ImportEdge[] = [];
  const staticImport = /(?:^|[;\n])\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g;
  for (const match of code.matchAll(staticImport)) edges.push({ specifier: match[3] ?? '', typeOnly: match[2] !== undefined });
  for (const match of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    // `typeof import('x')` in a type position is erased too.
    const before = code.slice(Math.max(0, (match.index ?? 0) - 7), match.index);
    edges.push({ specifier: match[1] ?? '', typeOnly: /typeof\s*$/.test(before) });
  }
  return edges;
}

/** The repository-relative .ts file a relative specifier ('./x.js', '../y/z.js') names. */
function resolveRelative(from: string, specifier: string): string {
  const target = relative(ROOT, resolve(ROOT, dirname(from), specifier));
  return target.replace(/\.js$/, '.ts');
}

const FILES = SOURCE_DIRS.flatMap(sourceFiles).sort();
const GRAPH = new Map<string, { target: string; typeOnly: boolean; specifier: string }[]>(
  FILES.map((file) => [
    file,
    importsOf(readFileSync(join(ROOT, file), 'utf8')).map((edge) => ({
      specifier: edge.specifier,
      typeOnly: edge.typeOnly,
      target: edge.specifier.startsWith('.') ? resolveRelative(file, edge.specifier) : edge.specifier,
    })),
  ]),
);

describe('import wall', () => {
  it('reads the tree it checks (the pure core is not empty; stripComments and importsOf see through comments)', () => {
    expect(FILES.filter(isPure).length).toBeGreaterThan(30);
    expect(importsOf("// import x from 'node:fs'\nimport { a } from './a.js';\nimport type { B } from '../b.js';\nconst m = await import('node:net');")).toEqual([
      { specifier: './a.js', typeOnly: false },
      { specifier: '../b.js', typeOnly: true },
      { specifier: 'node:net', typeOnly: false },
    ]);
    expect(importsOf("const s = 'not // a comment'; /* import y from 'koffi' */ export { z } from './z.js';")).toEqual([
      { specifier: './z.js', typeOnly: false },
    ]);
  });

  it('every relative import names a file that exists', () => {
    const missing = [...GRAPH].flatMap(([file, edges]) =>
      edges.filter((e) => e.specifier.startsWith('.') && !FILES.includes(e.target)).map((e) => `${file} -> ${e.specifier}`),
    );
    expect(missing).toEqual([]);
  });

  it('the pure core imports only the pure core, node:crypto, node:module and xmlbuilder2', () => {
    const violations: string[] = [];
    for (const [file, edges] of GRAPH) {
      if (!isPure(file)) continue;
      for (const edge of edges) {
        if (edge.specifier.startsWith('.')) {
          // A type from outside the core is erased, but it still couples the core to a driver's shape: forbid it too.
          if (!isPure(edge.target)) violations.push(`${file} imports ${edge.target}${edge.typeOnly ? ' (type only)' : ''}`);
        } else if (!edge.typeOnly && !PURE_BARE_ALLOWED.has(edge.specifier)) {
          violations.push(`${file} imports ${edge.specifier}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('has no import cycle (run-time imports)', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, 'visiting');
      stack.push(file);
      for (const edge of GRAPH.get(file) ?? []) {
        if (edge.typeOnly || !GRAPH.has(edge.target)) continue;
        const seen = state.get(edge.target);
        if (seen === 'visiting') cycles.push([...stack.slice(stack.indexOf(edge.target)), edge.target].join(' -> '));
        else if (seen === undefined) visit(edge.target);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of FILES) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });
});
