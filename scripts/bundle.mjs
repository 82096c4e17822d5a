// Bundles the compiled CLI (dist/agent/cli/cli.js) with its pure-JS dependencies into dist/virt-net-agent.mjs plus a few
// chunks in dist/chunks/, the program the image runs: a handful of files to read at start instead of ~180 modules.
//
// Code splitting keeps every subcommand lazy: each `await import('./cmd-…')` loads only that command's chunk, and an
// external package is imported by the chunk that uses it (a single-file bundle hoists external imports to its top,
// so every command loaded gRPC and both native addons, and serve parsed all of the code: +10 MiB RSS).
// Left outside (loaded from node_modules at run time): the native addon koffi, gRPC (the sidecar loads it
// with .proto files from proto/), and xmlbuilder2 (domain/xml.ts requires it lazily).
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const BUNDLE = 'dist/virt-net-agent.mjs';
const CHUNKS = 'dist/chunks';

rmSync(CHUNKS, { recursive: true, force: true }); // chunk names carry hashes: drop the previous build's
const result = await build({
  entryPoints: { 'virt-net-agent': 'dist/agent/cli/cli.js' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi', '@grpc/grpc-js', '@grpc/proto-loader', 'xmlbuilder2'],
  // Bundled CommonJS code (pino, yaml) calls require(): give the ES module one.
  banner: { js: "import { createRequire as __vnaCreateRequire } from 'node:module'; const require = __vnaCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
const files = Object.keys(result.metafile.outputs).length;
console.log(`${BUNDLE} + ${files - 1} chunks in ${CHUNKS}: ${(bytes / 1024).toFixed(0)} KiB from ${Object.keys(result.metafile.inputs).length} modules`);
