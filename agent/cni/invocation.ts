// The CNI plugin's entry contract: one invocation (environment + stdin) in, the spec's stdout text and exit code out.
//
// Every way the plugin is delivered calls this one function: the `cni` subcommand (a process per invocation), and the
// resident `cni-daemon` that the /opt/cni/bin shim forwards to. It must therefore be reentrant: it never reads
// process.env or process.stdin, never calls process.exit, and leaves the calling thread in the netns it found.
//
// It answers VERSION, runs ADD/DEL/CHECK through the minimal chained plugin (agent/cni/chained.ts), and reports
// every other command (STATUS, GC) as not implemented yet (a spec error, code 4); agent/cni/ grows the real commands
// behind the same signature.

import { cniError, SUPPORTED_CNI_VERSIONS, type CniInvocation, type CniOutcome } from './spec.js';

export { cniError, SUPPORTED_CNI_VERSIONS, type CniEnvironment, type CniInvocation, type CniOutcome } from './spec.js';

export async function handleCniInvocation(invocation: CniInvocation): Promise<CniOutcome> {
  const command = invocation.env['CNI_COMMAND'];
  if (command === 'VERSION') {
    return { stdout: `${JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_CNI_VERSIONS })}\n`, exitCode: 0 };
  }
  if (command === undefined || command === '') return cniError(4, 'CNI_COMMAND: missing');
  // ADD/DEL/CHECK of the chained role, minimal for now (agent/cni/chained.ts); loaded only when needed.
  const chained = await (await import('./chained.js')).runChained(command, invocation.env, invocation.stdin);
  if (chained !== undefined) return chained;
  return cniError(4, `CNI_COMMAND: ${command} not implemented yet`);
}
