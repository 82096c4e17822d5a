// Role 2's read of the VMI from the Kubernetes API: the launcher pod (CNI_ARGS K8S_POD_NAMESPACE/K8S_POD_NAME) → the VirtualMachineInstance that owns it.
//
// A binding-plugin CNI runs before the VM exists: Multus calls it while the virt-launcher pod's sandbox is set up, so
// the VMI (ports, MAC, spoof-protection annotation, migration state) is only in the API. The kubeconfig is named by
// the admin's agent configuration (agent-config.ts), never by a network configuration: typically the one the node
// already gives CNI plugins (Multus' own, /etc/cni/net.d/multus.d/multus.kubeconfig); it needs `get` on pods and on
// virtualmachineinstances. Only what that file holds is read: the current context's server, CA, client
// certificate/key or token (tokenFile too). Plain http:// and insecure-skip-tls-verify only when the agent
// configuration says allowInsecureApi.
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CNI_CODES, CniSpecError } from './errors.js';

export interface KubeAccess {
  readonly server: URL;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly token?: string;
  readonly insecure: boolean;
}

const TIMEOUT_MS = 10_000;

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

/** A credential given inline (`<key>-data`, base64) or as a file relative to the kubeconfig. */
function material(section: Record<string, unknown>, key: string, path: string): Buffer | undefined {
  const data = section[`${key}-data`];
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
  const file = section[key];
  if (typeof file !== 'string' || file === '') return undefined;
  const full = isAbsolute(file) ? file : join(dirname(path), file);
  try {
    return readFileSync(full);
  } catch (error) {
    throw badKubeconfig(path, `cannot read ${key} ${full}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

export function readKubeconfig(path: string, allowInsecure = false): KubeAccess {
  let config: unknown;
  try {
    config = parseYaml(readFileSync(path, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw badKubeconfig(path, code ? `cannot read it: ${code}` : `not YAML: ${(error as Error).message.split('\n')[0] ?? ''}`);
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
  if (token === undefined && typeof user['tokenFile'] === 'string') {
    const file = isAbsolute(user['tokenFile']) ? user['tokenFile'] : join(dirname(path), user['tokenFile']);
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw badKubeconfig(path, `cannot read tokenFile ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  const ca = material(cluster, 'certificate-authority', path);
  const cert = material(user, 'client-certificate', path);
  const key = material(user, 'client-key', path);
  return {
    server,
    insecure,
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
    timeout: TIMEOUT_MS,
  };
  if (url.protocol === 'https:') {
    if (access.ca) options.ca = access.ca;
    if (access.cert) options.cert = access.cert;
    if (access.key) options.key = access.key;
    options.rejectUnauthorized = !access.insecure;
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(url, options, (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
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
    request.on('timeout', () => request.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
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
