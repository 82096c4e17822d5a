// The CNI plugin's entry contract: one invocation (environment + stdin) in, the spec's stdout text and exit code out.
//
// Every way the plugin is delivered calls this one function: the `cni` subcommand (a process per invocation), and the
// resident `cni-daemon` that the /opt/cni/bin shim forwards to. It must therefore be reentrant: it never reads
// process.env or process.stdin, never calls process.exit, and leaves the calling thread in the netns it found.
//
// It answers VERSION, runs ADD/DEL/CHECK through the minimal chained plugin (agent/cni/chained.ts), and reports
// every other command (STATUS, GC) as not implemented yet (a spec error, code 4); agent/cni/ grows the real commands
// behind the same signature.

/** The CNI_* variables (and anything else) the runtime set for this invocation. */
export type CniEnvironment = Readonly<Record<string, string | undefined>>;

export interface CniInvocation {
  readonly env: CniEnvironment;
  /** The network configuration JSON exactly as the runtime wrote it to stdin (may be empty for VERSION). */
  readonly stdin: string;
}

export interface CniOutcome {
  /** What the plugin prints on stdout: a result, a version object, or a spec error object; '' where the spec wants nothing. */
  readonly stdout: string;
  /** 0 on success; non-zero with a spec error object on stdout otherwise. */
  readonly exitCode: number;
}

/** The versions this plugin speaks (result and configuration formats). */
export const SUPPORTED_CNI_VERSIONS: readonly string[] = ['0.4.0', '1.0.0', '1.1.0'];

/** A CNI spec error object (SPEC.md, "Error"). */
export function cniError(code: number, msg: string, details?: string, cniVersion = '1.1.0'): CniOutcome {
  const body = details === undefined ? { cniVersion, code, msg } : { cniVersion, code, msg, details };
  return { stdout: `${JSON.stringify(body)}\n`, exitCode: 1 };
}

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
