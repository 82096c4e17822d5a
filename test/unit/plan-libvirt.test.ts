// Every <interface>/<hostdev> the plan tables produce, in a full domain: libvirt's RNG schema and (except passt) its real parser.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Arch } from '../../agent/plan/plan-types.js';
import { hostdevsByAlias, listDomainInterfaces } from '../../domain/domain-xml.js';
import { bridgeCases } from '../fixtures/cases-bridge.js';
import { masqueradeCases } from '../fixtures/cases-masquerade.js';
import { passtSriovPluginCases } from '../fixtures/cases-passt-sriov-plugins.js';
import { allPhaseCases } from '../fixtures/cases-phases.js';
import { runCase } from '../fixtures/plan-case.js';
import { closeLibvirt, defineWithLibvirt, libvirtAtLeast, type TestArch, validateWithSchema, wrapInDomain } from '../helpers/libvirt-check.js';

const TEST_ARCH: Record<Arch, TestArch> = { amd64: 'x86_64', arm64: 'aarch64', s390x: 's390x' };

interface DomainUnderTest {
  readonly name: string;
  readonly arch: TestArch;
  readonly interfaces: readonly string[];
  readonly hostdevs: readonly string[];
  readonly memoryBacking: string | null;
}

function collect(): DomainUnderTest[] {
  const seen = new Set<string>();
  const out: DomainUnderTest[] = [];
  const add = (d: DomainUnderTest): void => {
    const key = [d.arch, ...d.interfaces, ...d.hostdevs, d.memoryBacking ?? ''].join('\n');
    if (d.interfaces.length + d.hostdevs.length === 0 || seen.has(key)) return;
    seen.add(key);
    out.push(d);
  };
  for (const c of [...bridgeCases, ...masqueradeCases, ...passtSriovPluginCases, ...allPhaseCases]) {
    const plan = runCase(c);
    const arch = TEST_ARCH[c.arch ?? 'amd64'];
    // The whole set of devices the case puts into one domain.
    add({ name: c.name, arch, interfaces: plan.domain.interfaces, hostdevs: plan.domain.hostdevs, memoryBacking: plan.domain.memoryBacking });
    // Each hot(un)plug / update payload on its own.
    for (const op of plan.domain.operations) {
      const isHostdev = op.xml.startsWith('<hostdev');
      add({
        name: `${c.name} [${op.op} ${op.network}]`,
        arch,
        interfaces: isHostdev ? [] : [op.xml],
        hostdevs: isHostdev ? [op.xml] : [],
        memoryBacking: null,
      });
    }
  }
  return out;
}

const domains = collect();
const isPasst = (d: DomainUnderTest): boolean => d.interfaces.some((x) => x.startsWith('<interface type="vhostuser"'));
const aliasOf = (xml: string): string | undefined => /<alias name=["']([^"']+)["']/.exec(xml)?.[1];

describe('plan devices against libvirt', () => {
  // vhost-user with a passt backend needs libvirt >= 11.1 (schema and parser).
  let modern = false;
  beforeAll(async () => {
    modern = await libvirtAtLeast(11, 1);
  });
  afterAll(async () => {
    await closeLibvirt();
  });

  it('collects the devices of every table (interfaces, hostdevs, passt, operations)', () => {
    const all = domains.flatMap((d) => [...d.interfaces, ...d.hostdevs]);
    expect(all.length).toBeGreaterThanOrEqual(40);
    expect(all.some((x) => x.includes('type="vhostuser"'))).toBe(true);
    expect(all.some((x) => x.startsWith('<hostdev'))).toBe(true);
    expect(all.some((x) => x.includes('<link state="down"/>'))).toBe(true);
    expect(domains.some((d) => d.arch === 's390x')).toBe(true);
    expect(domains.some((d) => d.arch === 'aarch64')).toBe(true);
  });

  describe.each(domains.map((d) => [d.name, d] as const))('%s', (_name, d) => {
    it('validates against the RNG schema (virt-xml-validate)', async () => {
      let devices = d;
      if (isPasst(d) && !modern) {
        // libvirt 9.0's schema wants <source type='unix' path mode> for vhostuser; the passt grammar (source dev,
        // backend, portForward) is the same as for type='user', which this schema knows.
        devices = { ...d, interfaces: d.interfaces.map((x) => x.replace('<interface type="vhostuser">', '<interface type="user">')) };
      }
      const result = await validateWithSchema(wrapInDomain(devices, { arch: d.arch }));
      expect(result.output).toContain('validates');
      expect(result.ok).toBe(true);
    });

    it.skipIf(isPasst(d))("is defined by libvirt's parser (test:///default), which keeps every device", async () => {
      const result = await defineWithLibvirt(wrapInDomain(d, { arch: d.arch }));
      expect(result.error).toBeUndefined();
      const xml = result.xml ?? '';
      const interfaceAliases = listDomainInterfaces(xml).map((entry) => entry.alias);
      for (const x of d.interfaces) expect(interfaceAliases).toContain(aliasOf(x));
      const hostdevs = hostdevsByAlias(xml);
      for (const x of d.hostdevs) expect(hostdevs.has(aliasOf(x) ?? '')).toBe(true);
    });
  });
});
