// Loads KubeVirt's hook .proto files (proto/kubevirt/hooks/) into grpc-js service definitions, with typed messages.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The Callbacks versions this sidecar serves, newest first (virt-launcher picks one it knows). */
export const CALLBACK_VERSIONS = ['v1alpha3', 'v1alpha2'] as const;
export type CallbackVersion = (typeof CALLBACK_VERSIONS)[number];

export interface HookPoint {
  readonly name: string;
  readonly priority: number;
}
export interface InfoResult {
  readonly name: string;
  readonly hookPoints: readonly HookPoint[];
  readonly versions: readonly string[];
}
export interface OnDefineDomainParams {
  readonly domainXML: Buffer;
  readonly vmi: Buffer;
}
export interface OnDefineDomainResult {
  readonly domainXML: Buffer;
}
export interface PreCloudInitIsoParams {
  readonly cloudInitNoCloudSource: Buffer;
  readonly vmi: Buffer;
  readonly cloudInitData: Buffer;
}
export interface PreCloudInitIsoResult {
  readonly cloudInitNoCloudSource: Buffer;
  readonly cloudInitData: Buffer;
}

/** The proto dir sits at the repository root: two levels above agent/sidecar/, three above dist/agent/sidecar/, one above the bundle dist/virt-net-agent.mjs. */
export function protoDir(): string {
  for (const rel of ['../../proto/', '../../../proto/', '../proto/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}kubevirt/hooks/info.proto`)) return dir;
  }
  throw new Error('proto/kubevirt/hooks/info.proto not found next to the agent (is the proto/ folder installed?)');
}

const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

function service(file: string, path: readonly string[]): grpc.ServiceDefinition {
  const definition = grpc.loadPackageDefinition(protoLoader.loadSync(`${protoDir()}kubevirt/hooks/${file}`, LOADER_OPTIONS));
  let node: unknown = definition;
  for (const key of path) node = (node as Record<string, unknown>)[key];
  const ctor = node as { service?: grpc.ServiceDefinition } | undefined;
  if (ctor?.service === undefined) throw new Error(`${file}: service ${path.join('.')} not found`);
  return ctor.service;
}

export interface HookServices {
  readonly info: grpc.ServiceDefinition;
  readonly callbacks: Readonly<Record<CallbackVersion, grpc.ServiceDefinition>>;
}

export function loadHookServices(): HookServices {
  return {
    info: service('info.proto', ['kubevirt', 'hooks', 'info', 'Info']),
    callbacks: {
      v1alpha3: service('v1alpha3.proto', ['kubevirt', 'hooks', 'v1alpha3', 'Callbacks']),
      v1alpha2: service('v1alpha2.proto', ['kubevirt', 'hooks', 'v1alpha2', 'Callbacks']),
    },
  };
}

/** Client constructors for tests and tools (same .proto files). */
export function loadHookClients(): {
  Info: grpc.ServiceClientConstructor;
  CallbacksV1alpha3: grpc.ServiceClientConstructor;
  CallbacksV1alpha2: grpc.ServiceClientConstructor;
} {
  const make = (file: string, path: readonly string[]): grpc.ServiceClientConstructor =>
    grpc.makeClientConstructor(service(file, path), path.join('.'));
  return {
    Info: make('info.proto', ['kubevirt', 'hooks', 'info', 'Info']),
    CallbacksV1alpha3: make('v1alpha3.proto', ['kubevirt', 'hooks', 'v1alpha3', 'Callbacks']),
    CallbacksV1alpha2: make('v1alpha2.proto', ['kubevirt', 'hooks', 'v1alpha2', 'Callbacks']),
  };
}
