// The CNI plugin's entry contract: one invocation (environment + stdin) in, the spec's stdout text and exit code out.
//
// Every way the plugin is delivered calls this one function: the `cni` subcommand (a process per invocation), and the
// resident `cni-daemon` that the /opt/cni/bin shim forwards to. It is therefore reentrant: it never reads
// process.env or process.stdin, never calls process.exit, and leaves the calling thread in the netns it found (the
// kernel is reached through a driver bound to CNI_NETNS, see pod-access.ts). The commands live beside it: config.ts
// (parse/validate), version.ts, add.ts, del.ts, check.ts, gc.ts, status.ts, result.ts; docs/cni.md describes them.
import { AgentError, PlanError } from '../plan/errors.js';
import { KernelError } from '../drivers/kernel-error.js';
import type { AgentConfig } from './agent-config.js';
import { parseCommand, parseRequest, type CniRequest } from './config.js';
import { CNI_CODES, CniSpecError } from './errors.js';
import { cniError, type CniInvocation, type CniOutcome, type CniWarn } from './spec.js';
import { versionAnswer } from './version.js';

export { cniError, SUPPORTED_CNI_VERSIONS, type CniEnvironment, type CniInvocation, type CniOutcome, type CniWarn } from './spec.js';

/** Busy kernel resources are worth a retry (11); other kernel failures are I/O failures (5). */
const RETRYABLE = new Set(['EBUSY', 'EAGAIN', 'EINTR']);

function toOutcome(error: unknown, cniVersion: string, warn: CniWarn): CniOutcome {
  if (error instanceof CniSpecError) return cniError(error.code, error.message, error.details, cniVersion);
  if (error instanceof KernelError) {
    const code = error.code !== null && RETRYABLE.has(error.code) ? CNI_CODES.tryAgainLater : CNI_CODES.ioFailure;
    return cniError(code, error.oneLine(), undefined, cniVersion);
  }
  if (error instanceof PlanError) return cniError(CNI_CODES.invalidConfig, error.oneLine(), undefined, cniVersion);
  if (error instanceof AgentError) return cniError(error.exitCode === 2 ? CNI_CODES.invalidConfig : CNI_CODES.ioFailure, error.oneLine(), undefined, cniVersion);
  // A bug: the stack goes to the log, never into the answer (runtimes put CNI errors into pod events, for the tenant).
  const message = error instanceof Error ? error.message : String(error);
  warn('internal error in the plugin', { err: message, stack: error instanceof Error ? error.stack : undefined });
  return cniError(CNI_CODES.ioFailure, `internal error: ${message.split('\n')[0] ?? ''}`, undefined, cniVersion);
}

/** The command modules load on first use: VERSION (and the daemon's start) stay cheap. */
async function run(request: CniRequest, agent: AgentConfig, warn: CniWarn): Promise<string> {
  switch (request.command) {
    case 'ADD':
      if (request.conf.logicNetworkName !== null) return (await import('./binding-plugin.js')).bindingPluginAdd(request, agent);
      return (await import('./add.js')).chainedAdd(request, request.conf.binding ?? 'masquerade', agent);
    case 'DEL':
      return (await import('./del.js')).cniDel(request, agent, warn);
    case 'CHECK':
      return (await import('./check.js')).cniCheck(request, agent);
    case 'GC':
      return (await import('./gc.js')).cniGc(request, agent, warn);
    case 'STATUS':
      return (await import('./status.js')).cniStatus();
    case 'VERSION':
      return versionAnswer();
  }
}

/**
 * One invocation under the agent configuration `agent` (the admin's, loaded by the caller: the daemon once, the
 * fallback per process); nothing here reads a configuration of its own, so both deliveries behave the same.
 */
export async function handleCniInvocation(invocation: CniInvocation, agent: AgentConfig, warn: CniWarn = () => undefined): Promise<CniOutcome> {
  let cniVersion = '1.1.0';
  try {
    const command = parseCommand(invocation.env);
    if (command === 'VERSION') return { stdout: versionAnswer(), exitCode: 0 };
    const request = parseRequest(invocation.env, invocation.stdin, command);
    cniVersion = request.conf.cniVersion;
    return { stdout: await run(request, agent, warn), exitCode: 0 };
  } catch (error) {
    return toOutcome(error, cniVersion, warn);
  }
}
