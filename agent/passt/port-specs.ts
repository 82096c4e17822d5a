// The VMI's passt port forwards as passt's own -t/-u arguments (the same rules as the <portForward> elements of the core binding).
import type { PortForward } from '../../domain/interface-spec.js';

/** One PortForward → passt's SPEC: "all" when it lists no ranges, "~N" for an excluded port, "N" or "N-M" otherwise. */
function spec(forward: PortForward): string {
  if (forward.ranges.length === 0) return 'all';
  return forward.ranges
    .map((r) => `${r.exclude === true ? '~' : ''}${r.start}${r.end !== undefined ? `-${r.end}` : ''}`)
    .join(',');
}

/**
 * The `-t SPEC`/`-u SPEC` arguments for passt. A protocol with no <portForward> gets no flag (passt's default
 * is "none"). An exclude-only list ("~15000,…") means "everything except" in passt, as in libvirt.
 */
export function passtPortArgs(forwards: readonly PortForward[]): string[] {
  const args: string[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    const forward = forwards.find((f) => f.proto === proto);
    if (forward !== undefined) args.push(proto === 'tcp' ? '-t' : '-u', spec(forward));
  }
  return args;
}
