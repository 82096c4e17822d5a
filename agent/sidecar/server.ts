// The hook sidecar's gRPC server on a unix socket: Info plus Callbacks v1alpha3/v1alpha2, one-line error statuses, clean shutdown.
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { AgentError, InputError, PlanError } from '../plan/errors.js';
import {
  CALLBACK_VERSIONS,
  loadHookServices,
  type InfoResult,
  type OnDefineDomainParams,
  type OnDefineDomainResult,
  type PreCloudInitIsoParams,
  type PreCloudInitIsoResult,
} from './protos.js';

export interface SidecarOptions {
  readonly socketPath: string;
  /** The hook name Info reports. */
  readonly name: string;
  readonly onDefineDomain: (domainXml: Buffer, vmi: Buffer) => Promise<string>;
  readonly log: Logger;
}

export interface SidecarServer {
  /** Resolves once the server has stopped (Shutdown call or close()) and the socket file is gone. */
  readonly stopped: Promise<void>;
  close(): Promise<void>;
}

/** KubeVirt's hook point names (pkg/hooks/info/info.go). */
export const HOOK_POINTS = ['OnDefineDomain', 'PreCloudInitIso', 'Shutdown'] as const;

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** Does something accept connections on this unix socket? */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Removes a socket file left by a dead sidecar; refuses a live socket or a file that is not a socket. */
export async function removeStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = await lstat(path);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    throw new InputError('--socket', `cannot inspect ${path}: ${errorCode(err) ?? String(err)}`);
  }
  if (!stat.isSocket()) throw new InputError('--socket', `${path} exists and is not a socket`);
  if (await socketIsLive(path)) throw new InputError('--socket', `${path} is in use by a running server`);
  await unlink(path);
}

/** gRPC status for an error: bad input → INVALID_ARGUMENT, pod cannot satisfy the VMI → FAILED_PRECONDITION. */
function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof PlanError) return { code: grpc.status.FAILED_PRECONDITION, details: err.oneLine() };
  if (err instanceof InputError) return { code: grpc.status.INVALID_ARGUMENT, details: err.oneLine() };
  if (err instanceof AgentError) return { code: grpc.status.INTERNAL, details: err.oneLine() };
  const message = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.INTERNAL, details: `internal error: ${(message.split('\n')[0] ?? '').trim()}` };
}

export async function startSidecar(options: SidecarOptions): Promise<SidecarServer> {
  const { socketPath, log } = options;
  await mkdir(dirname(socketPath), { recursive: true });
  await removeStaleSocket(socketPath);
  const services = loadHookServices();
  const server = new grpc.Server();
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping = false;

  const stop = async (): Promise<void> => {
    if (stopping) return stopped;
    stopping = true;
    await new Promise<void>((resolve) => {
      // In-flight calls (the Shutdown reply itself) finish; a stuck client is cut off after 5 s.
      const force = setTimeout(() => server.forceShutdown(), 5_000);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    try {
      await unlink(socketPath);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') log.warn({ err, socketPath }, 'cannot remove the hook socket');
    }
    log.info({ socketPath }, 'hook sidecar stopped');
    resolveStopped();
    return stopped;
  };

  const info: InfoResult = {
    name: options.name,
    versions: [...CALLBACK_VERSIONS],
    hookPoints: HOOK_POINTS.map((name) => ({ name, priority: 0 })),
  };
  server.addService(services.info, {
    Info: (_call: grpc.ServerUnaryCall<unknown, InfoResult>, callback: grpc.sendUnaryData<InfoResult>) => {
      log.info('Info called');
      callback(null, info);
    },
  });

  const onDefineDomain = (
    call: grpc.ServerUnaryCall<OnDefineDomainParams, OnDefineDomainResult>,
    callback: grpc.sendUnaryData<OnDefineDomainResult>,
  ): void => {
    options.onDefineDomain(call.request.domainXML, call.request.vmi).then(
      (xml) => {
        log.info({ bytes: xml.length }, 'OnDefineDomain: domain updated');
        callback(null, { domainXML: Buffer.from(xml, 'utf8') });
      },
      (err: unknown) => {
        const status = toStatus(err);
        log.warn({ code: status.code, details: status.details }, 'OnDefineDomain failed');
        callback(status, null);
      },
    );
  };
  // Networking has nothing to change in cloud-init: return what came in.
  const preCloudInitIso = (
    call: grpc.ServerUnaryCall<PreCloudInitIsoParams, PreCloudInitIsoResult>,
    callback: grpc.sendUnaryData<PreCloudInitIsoResult>,
  ): void => {
    callback(null, { cloudInitNoCloudSource: call.request.cloudInitNoCloudSource, cloudInitData: call.request.cloudInitData });
  };
  const shutdown = (_call: grpc.ServerUnaryCall<unknown, object>, callback: grpc.sendUnaryData<object>): void => {
    log.info('Shutdown called');
    callback(null, {});
    // After the reply is queued; tryShutdown lets it drain.
    setImmediate(() => void stop());
  };
  server.addService(services.callbacks.v1alpha3, { OnDefineDomain: onDefineDomain, PreCloudInitIso: preCloudInitIso, Shutdown: shutdown });
  server.addService(services.callbacks.v1alpha2, { OnDefineDomain: onDefineDomain, PreCloudInitIso: preCloudInitIso });

  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new AgentError('--socket', `cannot listen on ${socketPath}: ${err.message}`));
      else resolve();
    });
  });
  log.info({ socketPath, name: options.name, versions: info.versions }, 'hook sidecar listening');
  return { stopped, close: stop };
}
