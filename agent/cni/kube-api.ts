// Role 2's read of the VMI from the Kubernetes API: the launcher pod (CNI_ARGS K8S_POD_NAMESPACE/K8S_POD_NAME) → the VirtualMachineInstance that owns it.
//
// A binding-plugin CNI runs before the VM exists: Multus calls it while the virt-launcher pod's sandbox is set up, so
// the VMI (ports, MAC, spoof-protection annotation, migration state) is only in the API. The kubeconfig is named by
// the admin's agent configuration (agent-config.ts), never by a network configuration: typically the one the node
// already gives CNI plugins (Multus' own, /etc/cni/net.d/multus.d/multus.kubeconfig); it needs `get` on pods and on
// virtualmachineinstances. Only what that file holds is read: the current context's server, CA, client
// certificate/key or token (tokenFile too), each file through a bounded, non-blocking regular-file read. Plain http://
// and insecure-skip-tls-verify only when the agent configuration says allowInsecureApi. Every request has an overall
// deadline (connect, TLS, headers and body together, not only an idle timeout) and a cap on the response body, so a
// slow or endless server holds an invocation for apiTimeoutMs at most.
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { AgentConfig } from './agent-config.js';
import { readBoundedFile } from './bounded-read.js';
import { CNI_CODES, CniSpecError } from './errors.js';

export interface KubeAccess {
  readonly server: URL;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly token?: string;
  readonly insecure: boolean;
  /** Overall deadline of one request. */
  readonly deadlineMs: number;
  /** Largest response body read. */
  readonly maxBytes: number;
}

/** What of the agent configuration the API access takes. */
export type KubeLimits = Pick<AgentConfig, 'allowInsecureApi' | 'maxFileBytes' | 'apiTimeoutMs' | 'apiMaxResponseBytes'>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function badKubeconfig(path: string, message: string): CniSpecError {
  return new CniSpecError(CNI_CODES.invalidConfig, 'kubeconfig', `${path}: ${message}`);
}

/** The named entry of a kubeconfig list (clusters, users, contexts): `{name, <kind>: {...}}`. */
function named(config: Record<string, unknown>, list: string, kind: string, name: string, path: string): Record<string, unknown> {
  const entries = Array.isArray(config[list]) ? (config[list] as unknown[]) : [];
  const entry = entries.find((candidate) => isObject(candidate) && candidate['name'] === name);
  if (!isObject(entry) || !isObject(entry[kind])) throw badKubeconfig(path, `no ${kind} named ${JSON.stringify(name)} in ${list}`);
  return entry[kind];
}

/** A file the kubeconfig names (relative to it), read bounded; error 7 naming kubeconfig when missing. */
async function readNamed(file: string, what: string, path: string, maxBytes: number): Promise<string> {
  const full = isAbsolute(file) ? file : join(dirname(path), file);
  const text = await readBoundedFile(full, maxBytes, 'kubeconfig');
  if (text === null) throw badKubeconfig(path, `cannot read ${what} ${full}: ENOENT`);
  return text;
}

/** A credential given inline (`<key>-data`, base64) or as a file relative to the kubeconfig. */
async function material(section: Record<string, unknown>, key: string, path: string, maxBytes: number): Promise<Buffer | undefined> {
  const data = section[`${key}-data`];
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
  const file = section[key];
  if (typeof file !== 'string' || file === '') return undefined;
  return Buffer.from(await readNamed(file, key, path, maxBytes), 'utf8');
}

/** The API access a kubeconfig named by the agent configuration gives, with the configuration's limits. */
export async function readKubeconfig(path: string, limits: KubeLimits): Promise<KubeAccess> {
  const allowInsecure = limits.allowInsecureApi;
  const text = await readBoundedFile(path, limits.maxFileBytes, 'kubeconfig');
  if (text === null) throw badKubeconfig(path, 'cannot read it: ENOENT');
  let config: unknown;
  try {
    config = parseYaml(text);
  } catch (error) {
    throw badKubeconfig(path, `not YAML: ${(error as Error).message.split('\n')[0] ?? ''}`);
  }
  if (!isObject(config)) throw badKubeconfig(path, 'not a kubeconfig');
  const contextName = config['current-context'];
  if (typeof contextName !== 'string' || contextName === '') throw badKubeconfig(path, 'no current-context');
  const context = named(config, 'contexts', 'context', contextName, path);
  const cluster = named(config, 'clusters', 'cluster', String(context['cluster'] ?? ''), path);
  const user = typeof context['user'] === 'string' ? named(config, 'users', 'user', context['user'], path) : {};
  let server: URL;
  try {
    server = new URL(String(cluster['server'] ?? ''));
  } catch {
    throw badKubeconfig(path, `cluster server ${JSON.stringify(cluster['server'])} is not a URL`);
  }
  if (server.protocol !== 'https:' && server.protocol !== 'http:') throw badKubeconfig(path, `cluster server must be https:// or http://, got ${server.protocol}`);
  if (server.protocol === 'http:' && !allowInsecure) {
    throw badKubeconfig(path, `cluster server ${server.origin} is plain http://: credentials and the VMI would travel unprotected (allowInsecureApi: true in the agent configuration allows it)`);
  }
  const insecure = cluster['insecure-skip-tls-verify'] === true;
  if (insecure && !allowInsecure) {
    throw badKubeconfig(path, 'insecure-skip-tls-verify is set: the server would not be verified (allowInsecureApi: true in the agent configuration allows it)');
  }
  let token = typeof user['token'] === 'string' ? user['token'] : undefined;
  if (token === undefined && typeof user['tokenFile'] === 'string' && user['tokenFile'] !== '') {
    token = (await readNamed(user['tokenFile'], 'tokenFile', path, limits.maxFileBytes)).trim();
  }
  // A token goes into a header: a line break in it would be refused by node anyway, but say which file is wrong.
  if (token !== undefined && /[\0-\x1f\x7f]/.test(token)) throw badKubeconfig(path, 'the token contains a control character');
  const ca = await material(cluster, 'certificate-authority', path, limits.maxFileBytes);
  const cert = await material(user, 'client-certificate', path, limits.maxFileBytes);
  const key = await material(user, 'client-key', path, limits.maxFileBytes);
  return {
    server,
    insecure,
    deadlineMs: limits.apiTimeoutMs,
    maxBytes: limits.apiMaxResponseBytes,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(token ? { token } : {}),
  };
}

function unavailable(what: string, message: string): CniSpecError {
  // The API is the one thing we wait on: a transient failure is worth the runtime's retry (11).
  return new CniSpecError(CNI_CODES.tryAgainLater, 'kubeconfig', `cannot read ${what} from the Kubernetes API: ${message}`);
}

/** GET `apiPath` as JSON; 404 → null. */
export function getJson(access: KubeAccess, apiPath: string, what: string): Promise<unknown> {
  const url = new URL(apiPath.replace(/^\//, ''), access.server.href.endsWith('/') ? access.server : new URL(`${access.server.href}/`));
  const options: RequestOptions & { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean } = {
    method: 'GET',
    headers: { accept: 'application/json', ...(access.token ? { authorization: `Bearer ${access.token}` } : {}) },
    // Idle: no byte for the whole deadline (the overall deadline below usually fires first).
    timeout: access.deadlineMs,
  };
  if (url.protocol === 'https:') {
    if (access.ca) options.ca = access.ca;
    if (access.cert) options.cert = access.cert;
    if (access.key) options.key = access.key;
    options.rejectUnauthorized = !access.insecure;
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    // The whole request, body included, ends by the deadline: a server that trickles a byte at a time cannot hold us.
    const deadline = setTimeout(() => request.destroy(new Error(`no complete answer within ${access.deadlineMs} ms`)), access.deadlineMs);
    const settle = <T>(fn: (value: T) => void) => (value: T): void => {
      clearTimeout(deadline);
      fn(value);
    };
    resolve = settle(resolve);
    reject = settle(reject);
    const request = send(url, options, (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > access.maxBytes) {
          request.destroy(new Error(`the answer is larger than ${access.maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', (error) => reject(unavailable(what, error.message)));
      response.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = response.statusCode ?? 0;
        if (status === 404) return resolve(null);
        if (status === 401 || status === 403) {
          return reject(new CniSpecError(CNI_CODES.invalidConfig, 'kubeconfig', `the Kubernetes API refused to show ${what} (HTTP ${status}): the kubeconfig's user needs get on pods and virtualmachineinstances`));
        }
        if (status < 200 || status > 299) return reject(unavailable(what, `HTTP ${status} ${body.slice(0, 200).replace(/\s+/g, ' ')}`));
        try {
          resolve(JSON.parse(body) as unknown);
        } catch {
          reject(unavailable(what, 'the answer is not JSON'));
        }
      });
    });
    request.on('timeout', () => request.destroy(new Error(`no answer in ${access.deadlineMs} ms`)));
    request.on('error', (error) => reject(unavailable(what, error.message)));
    request.end();
  });
}

/** The VMI that owns the launcher pod (its controller ownerReference of kind VirtualMachineInstance). */
export async function launcherVmi(access: KubeAccess, namespace: string, podName: string): Promise<unknown> {
  const ns = encodeURIComponent(namespace);
  const podWhat = `pod ${namespace}/${podName}`;
  const pod = await getJson(access, `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(podName)}`, podWhat);
  if (pod === null) throw unavailable(podWhat, 'not found');
  const meta = isObject(pod) && isObject(pod['metadata']) ? pod['metadata'] : {};
  const owners = Array.isArray(meta['ownerReferences']) ? (meta['ownerReferences'] as unknown[]) : [];
  const owner = owners.find((ref) => isObject(ref) && ref['kind'] === 'VirtualMachineInstance' && typeof ref['name'] === 'string');
  if (!isObject(owner)) {
    throw new CniSpecError(CNI_CODES.invalidConfig, 'CNI_ARGS', `${podWhat} is not a virt-launcher pod: no ownerReference of kind VirtualMachineInstance`);
  }
  const vmiName = String(owner['name']);
  const vmiWhat = `virtualmachineinstance ${namespace}/${vmiName}`;
  const vmi = await getJson(access, `/apis/kubevirt.io/v1/namespaces/${ns}/virtualmachineinstances/${encodeURIComponent(vmiName)}`, vmiWhat);
  if (vmi === null) throw unavailable(vmiWhat, 'not found');
  return vmi;
}
