// The launcher pod an invocation is for, from CNI_ARGS K8S_POD_NAMESPACE/K8S_POD_NAME, checked as Kubernetes names so that neither can climb out of a folder or carry control characters.
import { CNI_CODES, CniSpecError } from './errors.js';

/** RFC 1123 label: what Kubernetes allows as a namespace name. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** RFC 1123 subdomain: what Kubernetes allows as a pod name (no "..", no "/", at most 253 bytes). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface PodName {
  readonly namespace: string;
  readonly name: string;
}

/** K8S_POD_NAME when given, checked (it also becomes the guest's DHCP hostname); undefined when absent. */
export function podNameArg(args: Readonly<Record<string, string>>): string | undefined {
  const name = args['K8S_POD_NAME'];
  if (name === undefined || name === '') return undefined;
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    throw new CniSpecError(CNI_CODES.invalidEnvironment, 'CNI_ARGS', `K8S_POD_NAME is not a Kubernetes pod name (a DNS subdomain): ${JSON.stringify(name)}`);
  }
  return name;
}

/** Both names, required (`why` says what for); error 4 naming CNI_ARGS when missing or malformed. */
export function podOf(args: Readonly<Record<string, string>>, why: string): PodName {
  const namespace = args['K8S_POD_NAMESPACE'];
  const name = podNameArg(args);
  if (!namespace || name === undefined) throw new CniSpecError(CNI_CODES.invalidEnvironment, 'CNI_ARGS', `K8S_POD_NAMESPACE and K8S_POD_NAME are needed ${why} (Multus passes them)`);
  if (!DNS_LABEL.test(namespace)) {
    throw new CniSpecError(CNI_CODES.invalidEnvironment, 'CNI_ARGS', `K8S_POD_NAMESPACE is not a Kubernetes namespace name (a DNS label): ${JSON.stringify(namespace)}`);
  }
  return { namespace, name };
}
