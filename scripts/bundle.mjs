// Bundles the compiled CLI (dist/agent/cli.js) with its pure-JS dependencies into one file, dist/virt-net-agent.mjs,
// the program the image runs: one file to read at start instead of ~150 modules (see BENCHMARKS.md, cold start).
//
// Left outside (loaded from node_modules at run time): the native addons (netlink, koffi, @unraid/libvirt), gRPC
// (only the sidecar loads it, with .proto files from proto/), and xmlbuilder2 (domain/xml.ts requires it lazily).
// Subcommands stay lazy: esbuild turns each `await import('./cmd-…')` into code that is parsed but only run on use.
import { build } from 'esbuild';

export const BUNDLE = 'dist/virt-net-agent.mjs';

const result = await build({
  entryPoints: ['dist/agent/cli.js'],
  outfile: BUNDLE,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['netlink', 'koffi', '@unraid/libvirt', '@grpc/grpc-js', '@grpc/proto-loader', 'xmlbuilder2'],
  // Bundled CommonJS code (pino, yaml) calls require(): give the ES module one.
  banner: { js: "import { createRequire as __vnaCreateRequire } from 'node:module'; const require = __vnaCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
console.log(`${BUNDLE}: ${(bytes / 1024).toFixed(0)} KiB from ${Object.keys(result.metafile.inputs).length} modules`);
