// xmlbuilder2, loaded on first use: commands that never build or read XML (setup, teardown, serve) start without it.
import { createRequire } from 'node:module';
import type * as XmlBuilder2 from 'xmlbuilder2';

let loaded: typeof XmlBuilder2 | null = null;

function xmlbuilder2(): typeof XmlBuilder2 {
  // xmlbuilder2 (with js-yaml and @oozcitak/dom) is the largest module graph the agent has: ~0.3 s of a cold start.
  loaded ??= createRequire(import.meta.url)('xmlbuilder2') as typeof XmlBuilder2;
  return loaded;
}

/** xmlbuilder2's `create`, with its overloads. */
export const create: typeof XmlBuilder2.create = ((...args: Parameters<typeof XmlBuilder2.create>) =>
  xmlbuilder2().create(...args)) as typeof XmlBuilder2.create;

/** xmlbuilder2's `builder`, with its overloads. */
export const builder: typeof XmlBuilder2.builder = ((...args: Parameters<typeof XmlBuilder2.builder>) =>
  xmlbuilder2().builder(...args)) as typeof XmlBuilder2.builder;
