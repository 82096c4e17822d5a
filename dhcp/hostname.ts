// The guest hostname handed out in DHCP option 12 (KubeVirt: the launcher pod's hostname, from pkg/util/net/dns/sanitize.go).

/** validation.DNS1123LabelMaxLength. */
export const DNS1123_LABEL_MAX_LENGTH = 63;

export interface HostnameSource {
  readonly metadata: { readonly name?: string };
  readonly spec: { readonly hostname?: string };
}

/**
 * KubeVirt's SanitizeHostname: spec.hostname as given (already a validated DNS label), else the VMI name
 * up to its first '.', cut to 63 characters.
 */
export function sanitizeHostname(vmi: HostnameSource): string {
  const hostname = vmi.spec.hostname ?? '';
  if (hostname !== '') return hostname;
  const name = vmi.metadata.name ?? '';
  return (name.split('.')[0] ?? '').slice(0, DNS1123_LABEL_MAX_LENGTH);
}

/**
 * The hostname for option 12. KubeVirt sends os.Hostname() of the launcher, i.e. the pod hostname, which
 * virt-controller set to sanitizeHostname(vmi). The pod hostname is used as given; when it is empty (e.g. a
 * hand-written pod state) the value is derived from the VMI; with neither, "" (no option 12).
 */
export function guestHostname(podHostname: string, vmi?: HostnameSource | null): string {
  if (podHostname !== '') return podHostname;
  return vmi ? sanitizeHostname(vmi) : '';
}
