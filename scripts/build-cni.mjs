// Builds the CNI plugin's delivery into dist/cni/ (part of `npm run build`, after the bundle):
//   dist/cni/virt-net-agent                      the static C shim (agent/cni/shim/cni-shim.c, gcc -static, libc only)
//   dist/cni/virt-net-agent.d/virt-net-agent     the self-contained fallback: a Node single executable application
//                                                (this node binary + the whole CLI as one CommonJS script, postject)
//   dist/cni/virt-net-agent.d/node_modules/      koffi, the only native addon the plugin loads, beside it
// `scripts/install-cni.sh` copies the two into /opt/cni/bin. The executable is rebuilt only when its script or the
// node binary changed (a stamp file), since copying and injecting ~100 MB costs seconds.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const OUT = 'dist/cni';
const SEA_DIR = join(OUT, 'virt-net-agent.d');
const WORK = join(OUT, 'sea-build');
const SEA_EXE = join(SEA_DIR, 'virt-net-agent');
const STAMP = join(WORK, 'stamp');
/** The packages the bundle leaves external; in the executable they are required from node_modules beside it. */
const EXTERNAL = ['koffi', '@grpc/grpc-js', '@grpc/proto-loader', 'xmlbuilder2'];
/** What the CNI plugin needs of them (gRPC and xmlbuilder2 serve the sidecar and the domain commands only). */
const SHIPPED = ['koffi', '@koromix/koffi-linux-x64'];

mkdirSync(WORK, { recursive: true });
mkdirSync(SEA_DIR, { recursive: true });

// 1. The shim.
execFileSync('gcc', ['-static', '-Os', '-s', '-Wall', '-Wextra', '-Werror', '-o', join(OUT, 'virt-net-agent'), 'agent/cni/shim/cni-shim.c'], { stdio: 'inherit' });

// 2. The CLI as one CommonJS script (a SEA runs exactly one). Inside an executable `require` knows only built-in
// modules, so external packages and import.meta.url (createRequire(import.meta.url) in lazy loaders) resolve
// against the executable's own path: node_modules next to it.
const script = join(WORK, 'virt-net-agent.cjs');
await build({
  entryPoints: ['dist/agent/cli/cli.js'],
  outfile: script,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  define: { 'import.meta.url': '__vnaMetaUrl' },
  banner: { js: "var __vnaRequire = require('node:module').createRequire(process.execPath); var __vnaMetaUrl = require('node:url').pathToFileURL(process.execPath).href;" },
  plugins: [
    {
      name: 'external-beside-executable',
      setup(b) {
        const filter = new RegExp(`^(${EXTERNAL.map((e) => e.replace(/[/@.-]/g, '\\$&')).join('|')})$`);
        b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'beside-exe' }));
        b.onLoad({ filter: /.*/, namespace: 'beside-exe' }, (args) => ({ contents: `module.exports = __vnaRequire(${JSON.stringify(args.path)});`, loader: 'js' }));
      },
    },
  ],
  logLevel: 'error',
});

// 3. The executable, unless the stamp says it is current.
const stamp = createHash('sha256')
  .update(readFileSync(script))
  .update(`${process.execPath}:${statSync(process.execPath).size}:${statSync(process.execPath).mtimeMs}`)
  .digest('hex');
if (!existsSync(SEA_EXE) || !existsSync(STAMP) || readFileSync(STAMP, 'utf8') !== stamp) {
  const blob = join(WORK, 'sea-prep.blob');
  const config = join(WORK, 'sea-config.json');
  writeFileSync(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(SEA_EXE, { force: true });
  cpSync(process.execPath, SEA_EXE);
  // The node binary carries ~10 MB of debug info; the executable does not need it.
  try {
    execFileSync('strip', ['--strip-debug', SEA_EXE], { stdio: 'ignore' });
  } catch {
    // No binutils: keep the larger binary.
  }
  execFileSync(process.execPath, ['node_modules/postject/dist/cli.js', SEA_EXE, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(STAMP, stamp);
}
for (const pkg of SHIPPED) {
  const from = join('node_modules', pkg);
  if (existsSync(from)) cpSync(from, join(SEA_DIR, 'node_modules', pkg), { recursive: true, dereference: true });
}
console.log(`${OUT}: shim virt-net-agent (${(statSync(join(OUT, 'virt-net-agent')).size / 1024).toFixed(0)} KiB), fallback ${SEA_EXE} (${(statSync(SEA_EXE).size / 2 ** 20).toFixed(0)} MiB)`);
