// Builds a pod sandbox ("pause") image without a registry: a docker-archive tar of Debian's busybox-static running `sleep infinity`.
//
// containerd's CRI plugin needs its `sandbox_image` in its image store; `ctr images import` takes this tar. The image
// is one layer (busybox and a few applet links), its entrypoint PID 1 of the sandbox (containerd stops it with SIGKILL).
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

export const BUSYBOX = '/bin/busybox';

interface TarEntry {
  readonly name: string;
  readonly type: 'file' | 'dir' | 'symlink';
  readonly mode: number;
  readonly data?: Buffer;
  readonly link?: string;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar archive (names < 100 bytes, as here), mtime 0 so the digest is stable. */
export function tar(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    if (Buffer.byteLength(e.name) >= 100) throw new Error(`tar: name too long: ${e.name}`);
    const data = e.type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const h = Buffer.alloc(512);
    h.write(e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name, 0, 'utf8');
    h.write(octal(e.mode, 8), 100, 'ascii');
    h.write(octal(0, 8), 108, 'ascii');
    h.write(octal(0, 8), 116, 'ascii');
    h.write(octal(data.length, 12), 124, 'ascii');
    h.write(octal(0, 12), 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write(e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2', 156, 'ascii');
    if (e.link !== undefined) h.write(e.link, 157, 'utf8');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    h.write('root', 265, 'ascii');
    h.write('root', 297, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    blocks.push(h, data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad > 0) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Writes the docker-archive of `ref` (e.g. localhost/vna-pause:1.0) to `out`. `entrypoint` defaults to `sleep
 * infinity`, which as PID 1 ignores SIGTERM (containerd kills sandboxes with SIGKILL anyway).
 */
export function writePauseImage(out: string, ref: string, entrypoint: readonly string[] = ['/bin/busybox', 'sleep', 'infinity']): void {
  const dirs = ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'var', 'run'];
  const layer = tar([
    ...dirs.map((d): TarEntry => ({ name: d, type: 'dir', mode: d === 'tmp' ? 0o1777 : 0o755 })),
    { name: 'bin/busybox', type: 'file', mode: 0o755, data: readFileSync(BUSYBOX) },
    ...['sh', 'sleep', 'ip', 'cat'].map((a): TarEntry => ({ name: `bin/${a}`, type: 'symlink', mode: 0o777, link: 'busybox' })),
    { name: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:0:root:/:/bin/sh\n') },
    { name: 'etc/group', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:\n') },
  ]);
  const layerHex = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: { Entrypoint: entrypoint, WorkingDir: '/', Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerHex}`] },
      history: [{ created_by: 'virt-net-agent test/helpers/pause-image.ts (busybox-static)' }],
    }),
  );
  const configHex = sha256(config);
  const colon = ref.lastIndexOf(':');
  const archive = tar([
    { name: layerHex, type: 'dir', mode: 0o755 },
    { name: `${layerHex}/layer.tar`, type: 'file', mode: 0o644, data: layer },
    { name: `${configHex}.json`, type: 'file', mode: 0o644, data: config },
    { name: 'manifest.json', type: 'file', mode: 0o644, data: Buffer.from(JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [ref], Layers: [`${layerHex}/layer.tar`] }])) },
    { name: 'repositories', type: 'file', mode: 0o644, data: Buffer.from(JSON.stringify({ [ref.slice(0, colon)]: { [ref.slice(colon + 1)]: layerHex } })) },
  ]);
  writeFileSync(out, archive);
}
