// The CNI spec's shapes this plugin speaks: the invocation and its outcome, the supported versions, the error object.

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

/**
 * Where an invocation reports what it did not do but did not fail for (a recorded namespace it refused): the
 * daemon's log, or the fallback's stderr. The spec gives a successful DEL no way to say it.
 */
export type CniWarn = (message: string, fields: Readonly<Record<string, unknown>>) => void;

/** The versions this plugin speaks (result and configuration formats). */
export const SUPPORTED_CNI_VERSIONS: readonly string[] = ['0.4.0', '1.0.0', '1.1.0'];

/** A CNI spec error object (SPEC.md, "Error"). */
export function cniError(code: number, msg: string, details?: string, cniVersion = '1.1.0'): CniOutcome {
  const body = details === undefined ? { cniVersion, code, msg } : { cniVersion, code, msg, details };
  return { stdout: `${JSON.stringify(body)}\n`, exitCode: 1 };
}
