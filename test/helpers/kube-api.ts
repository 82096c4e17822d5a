// The stand-in Kubernetes API of the CNI tests (fake-kube-api.mjs) run in a test's node netns, its TLS certificate, and kubeconfigs pointing at it.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk, waitFor, type Netns } from './netns.js';

export interface FakeApi {
  readonly port: number;
  log(): string;
  stop(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.1 in `dir` (cert.pem, key.pem). */
export async function makeApiCertificate(dir: string): Promise<void> {
  await runOk(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
}

/**
 * The stand-in API in `node` (so the plugin, run there like libcni runs it, reaches it on 127.0.0.1), answering
 * `objects` (see fake-kube-api.mjs) to `token`; HTTPS with dir's certificate, or plain HTTP when `http`.
 */
export async function startFakeApi(node: Netns, dir: string, objects: Record<string, unknown>, token: string, http = false): Promise<FakeApi> {
  const objectsFile = join(dir, `objects-${Math.random().toString(36).slice(2, 8)}.json`);
  writeFileSync(objectsFile, JSON.stringify(objects));
  const tls = http ? ['--http', '-'] : [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  const child = spawn('ip', ['netns', 'exec', node.name, process.execPath, 'test/helpers/fake-kube-api.mjs', objectsFile, ...tls, token], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(async () => /listening \d+/.test(out) || child.exitCode !== null, { timeoutMs: 30_000, intervalMs: 50, what: 'the stand-in API' });
  const port = Number(/listening (\d+)/.exec(out)?.[1]);
  if (!port) throw new Error(`stand-in API did not start: ${out}`);
  return {
    port,
    log: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface KubeconfigOptions {
  readonly token?: string;
  readonly tokenFile?: string;
  /** The server URL (default https://127.0.0.1:PORT with dir's certificate as the CA). */
  readonly server?: string;
  readonly insecureSkipTlsVerify?: boolean;
}

/** A kubeconfig for the stand-in API at `port`, written in `dir`; returns its path. */
export function writeKubeconfig(dir: string, port: number, options: KubeconfigOptions = {}): string {
  const file = join(dir, `kubeconfig-${port}-${Math.random().toString(36).slice(2, 8)}`);
  const server = options.server ?? `https://127.0.0.1:${port}`;
  const ca = server.startsWith('https:') && options.insecureSkipTlsVerify !== true ? `\n    certificate-authority-data: ${readFileSync(join(dir, 'cert.pem')).toString('base64')}` : '';
  const insecure = options.insecureSkipTlsVerify === true ? '\n    insecure-skip-tls-verify: true' : '';
  const user = options.tokenFile !== undefined ? `tokenFile: ${options.tokenFile}` : `token: ${options.token ?? ''}`;
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
current-context: multus
clusters:
- name: local
  cluster:
    server: ${server}${ca}${insecure}
users:
- name: multus
  user:
    ${user}
contexts:
- name: multus
  context: {cluster: local, user: multus}
`,
  );
  return file;
}
