// A small client of the kubelet's CRI v1 RuntimeService (proto/cri/runtime/v1/api.proto) over a runtime's unix socket.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The repository's proto/ is two levels above test/helpers/, three above dist/test/helpers/ (the bench). */
function protoFile(): string {
  for (const rel of ['../../proto/', '../../../proto/']) {
    const file = fileURLToPath(new URL(`${rel}cri/runtime/v1/api.proto`, import.meta.url));
    if (existsSync(file)) return file;
  }
  throw new Error('proto/cri/runtime/v1/api.proto not found');
}

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface PortMapping {
  readonly protocol?: Protocol;
  readonly container_port: number;
  /** 0 or absent: no host port (the kubelet still lists the container port). */
  readonly host_port?: number;
  readonly host_ip?: string;
}

export interface PodSandboxMetadata {
  readonly name: string;
  readonly uid: string;
  readonly namespace: string;
  readonly attempt?: number;
}

/** What a kubelet puts in RunPodSandboxRequest.config (the fields it sets for a Linux pod on the pod network). */
export interface PodSandboxConfig {
  readonly metadata: PodSandboxMetadata;
  readonly hostname: string;
  readonly log_directory?: string;
  readonly dns_config?: { readonly servers?: readonly string[]; readonly searches?: readonly string[]; readonly options?: readonly string[] };
  readonly port_mappings?: readonly PortMapping[];
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly linux?: {
    readonly cgroup_parent?: string;
    readonly security_context?: {
      readonly namespace_options?: { readonly network?: 'POD' | 'NODE'; readonly pid?: 'POD' | 'CONTAINER' | 'NODE'; readonly ipc?: 'POD' | 'NODE' };
      readonly privileged?: boolean;
      readonly seccomp?: { readonly profile_type: 'RuntimeDefault' | 'Unconfined' };
    };
    readonly sysctls?: Readonly<Record<string, string>>;
  };
}

export interface PodSandboxStatus {
  readonly id: string;
  readonly metadata: PodSandboxMetadata;
  readonly state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  readonly network: { readonly ip: string; readonly additional_ips: readonly { ip: string }[] } | null;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}

export interface PodSandboxStatusResponse {
  readonly status: PodSandboxStatus;
  /** Verbose only: the runtime's JSON under "info" (containerd 1.6: pid, netNamespacePath, config, cniResult, ...). */
  readonly info: Record<string, string>;
}

export interface ListedSandbox {
  readonly id: string;
  readonly metadata: PodSandboxMetadata;
  readonly state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  readonly labels: Record<string, string>;
}

export interface CriClient {
  version(): Promise<{ runtime_name: string; runtime_version: string; runtime_api_version: string }>;
  runPodSandbox(config: PodSandboxConfig, timeoutMs?: number): Promise<string>;
  podSandboxStatus(id: string, verbose?: boolean): Promise<PodSandboxStatusResponse>;
  stopPodSandbox(id: string, timeoutMs?: number): Promise<void>;
  removePodSandbox(id: string, timeoutMs?: number): Promise<void>;
  listPodSandbox(labelSelector?: Readonly<Record<string, string>>): Promise<ListedSandbox[]>;
  close(): void;
}

let serviceCtor: grpc.ServiceClientConstructor | undefined;

function runtimeService(): grpc.ServiceClientConstructor {
  if (serviceCtor === undefined) {
    const def = protoLoader.loadSync(protoFile(), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    serviceCtor = pkg.runtime.v1.RuntimeService;
  }
  return serviceCtor;
}

type Unary = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

/** Connects to `unix://<socket>` (no TLS, as the kubelet does). */
export function criClient(socket: string): CriClient {
  const Ctor = runtimeService();
  const client = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const call = <T>(method: string, req: object, timeoutMs = 120_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method];
      if (fn === undefined) {
        reject(new Error(`CRI client: no method ${method}`));
        return;
      }
      fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err !== null) reject(new Error(`CRI ${method}: ${err.details || err.message}`));
        else resolve(res as T);
      });
    });
  return {
    version: () => call('Version', { version: 'v1' }),
    runPodSandbox: async (config, timeoutMs) => (await call<{ pod_sandbox_id: string }>('RunPodSandbox', { config }, timeoutMs)).pod_sandbox_id,
    podSandboxStatus: (id, verbose = false) => call('PodSandboxStatus', { pod_sandbox_id: id, verbose }),
    stopPodSandbox: async (id, timeoutMs) => {
      await call('StopPodSandbox', { pod_sandbox_id: id }, timeoutMs);
    },
    removePodSandbox: async (id, timeoutMs) => {
      await call('RemovePodSandbox', { pod_sandbox_id: id }, timeoutMs);
    },
    listPodSandbox: async (labelSelector) =>
      (await call<{ items: ListedSandbox[] }>('ListPodSandbox', labelSelector === undefined ? {} : { filter: { label_selector: labelSelector } })).items,
    close: () => client.close(),
  };
}
