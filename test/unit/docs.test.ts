// The documentation holds together: README links every page of docs/, each page says first what it is for, and
// every relative link in README and docs/ names a file that exists.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const PAGES = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort();
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Markdown links `[text](target)` outside code fences, without anchors and external URLs. */
function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => (match[1] ?? '').split('#')[0] ?? '')
    .filter((target) => target !== '' && !/^[a-z]+:/i.test(target));
}

describe('docs', () => {
  it('has pages, and README links every one of them', () => {
    expect(PAGES.length).toBeGreaterThanOrEqual(5);
    const linked = new Set(relativeLinks(README));
    expect(PAGES.filter((page) => !linked.has(`docs/${page}`))).toEqual([]);
  });

  it.each(PAGES)('docs/%s opens with what it is for, then its title', (page) => {
    const [purpose, title] = readFileSync(join(ROOT, 'docs', page), 'utf8').split('\n');
    expect(purpose).toMatch(/^<!-- .{20,} -->$/);
    expect(title).toMatch(/^# \S/);
  });

  it('every relative link in README and docs/ resolves', () => {
    const broken: string[] = [];
    for (const file of ['README.md', ...PAGES.map((page) => `docs/${page}`)]) {
      for (const target of relativeLinks(readFileSync(join(ROOT, file), 'utf8'))) {
        if (!existsSync(join(ROOT, dirname(file), target))) broken.push(`${file} -> ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('README stays an entry page (the reference lives in docs/)', () => {
    expect(README.length).toBeLessThan(12_000);
  });
});
