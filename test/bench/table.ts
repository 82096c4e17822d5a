// The benchmark result table: one row per comparison (agent figure, baseline figure, ratio, target, met?), printed as text or markdown.

export interface Row {
  readonly what: string;
  /** "12.3 ms (p90 15.0)". */
  readonly agent: string;
  readonly baseline: string;
  /** agent ÷ baseline (or as the target defines it); null when skipped. */
  readonly ratio: number | null;
  /** "≤ 1.0×". */
  readonly target: string;
  /** null when there is no pass/fail (informational) or the row was skipped. */
  readonly met: boolean | null;
  /** Why the row was skipped, or a note. */
  readonly note?: string;
}

export function skipped(what: string, target: string, reason: string): Row {
  return { what, agent: '-', baseline: '-', ratio: null, target, met: null, note: `skipped: ${reason}` };
}

export function fmtMs(medianMs: number, p90Ms: number): string {
  return `${medianMs.toFixed(1)} ms (p90 ${p90Ms.toFixed(1)})`;
}

function cells(row: Row): string[] {
  const met = row.met === null ? (row.note?.startsWith('skipped') ? 'skipped' : '-') : row.met ? 'yes' : 'NO';
  return [row.what, row.agent, row.baseline, row.ratio === null ? '-' : `${row.ratio.toFixed(2)}×`, row.target, met];
}

const HEADER = ['what', 'agent', 'baseline', 'ratio', 'target', 'met?'];

export function renderMarkdown(rows: readonly Row[]): string {
  const lines = [`| ${HEADER.join(' | ')} |`, `|${HEADER.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${cells(row).join(' | ')} |`);
  const notes = rows.filter((r) => r.note !== undefined).map((r) => `- ${r.what}: ${r.note ?? ''}`);
  return `${lines.join('\n')}\n${notes.length > 0 ? `\n${notes.join('\n')}\n` : ''}`;
}

export function renderText(rows: readonly Row[]): string {
  const all = [HEADER, ...rows.map(cells)];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const notes = rows.filter((r) => r.note !== undefined).map((r) => `  ${r.what}: ${r.note ?? ''}`);
  return `${[line(HEADER), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cells(r)))].join('\n')}\n${notes.length > 0 ? `\nnotes:\n${notes.join('\n')}\n` : ''}`;
}
