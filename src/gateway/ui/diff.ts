// Expected against actual output, side by side, the lines that differ marked (issue 17): lines are
// compared as the exact checker compares them (trailing spaces of a line, and empty lines at the end, do
// not count), line by line; the first difference is marked more strongly, down to its first character.

import { h } from './dom';

/** The lines of a text as the exact checker sees them. */
function lines(text: string): string[] {
  const out = text.split('\n').map((line) => line.replace(/[ \t\r\f\v]+$/, ''));
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

export interface Difference {
  /** 1-based line of the first difference, or undefined when none. */
  line: number | undefined;
  /** 1-based column in that line. */
  column: number | undefined;
  /** Lines that differ (1-based). */
  differing: Set<number>;
}

export function difference(expected: string, actual: string): Difference {
  const a = lines(expected);
  const b = lines(actual);
  const differing = new Set<number>();
  let line: number | undefined;
  let column: number | undefined;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    differing.add(i + 1);
    if (line === undefined) {
      line = i + 1;
      const x = a[i] ?? '';
      const y = b[i] ?? '';
      let c = 0;
      while (c < x.length && c < y.length && x[c] === y[c]) c++;
      column = c + 1;
    }
  }
  return { line, column, differing };
}

function side(title: string, text: string, found: Difference, which: 'expected' | 'actual'): HTMLElement {
  const shown = text.split('\n');
  if (shown.length > 1 && shown[shown.length - 1] === '') shown.pop();
  const rows = shown.map((content, i) => {
    const number = i + 1;
    const first = found.line === number;
    let body: (string | HTMLElement)[] = [content];
    if (first && found.column !== undefined) {
      const at = found.column - 1;
      body = [content.slice(0, at), h('mark', { class: 'diff-char' }, content.slice(at, at + 1) || ' '), content.slice(at + 1)];
    }
    return h(
      'div',
      { class: `diff-line${found.differing.has(number) ? ' diff' : ''}${first ? ' diff-first' : ''}` },
      h('span', { class: 'diff-no' }, String(number)),
      h('span', { class: 'diff-text' }, body),
    );
  });
  // Lines the other side has and this one lacks show as missing.
  for (const number of found.differing) {
    if (number > shown.length) rows.push(h('div', { class: 'diff-line diff missing' }, h('span', { class: 'diff-no' }, String(number)), h('span', { class: 'diff-text muted' }, '(no line)')));
  }
  return h('div', { class: 'diff-side', 'data-side': which }, h('h3', null, title), h('div', { class: 'diff-body' }, rows));
}

/** The comparison block: what was expected and what came, side by side (stacked on a phone). */
export function comparison(expected: string, actual: string, note: string): HTMLElement {
  const found = difference(expected, actual);
  const where = found.line === undefined ? 'The outputs match line by line (the checker may compare differently).' : `First difference: line ${found.line}, column ${found.column}.`;
  return h(
    'div',
    { class: 'diff-block' },
    h('p', { class: 'muted small' }, `${where} ${note}`.trim()),
    h('div', { class: 'diff-columns' }, side('Expected', expected, found, 'expected'), side('Actual', actual, found, 'actual')),
  );
}
