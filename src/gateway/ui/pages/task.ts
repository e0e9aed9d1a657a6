// Task: one task, its verdict first (issue 17). Above the fold: the verdict (the status second), the
// time, memory and tests passed as judges report them, and while it runs its step, test i of N, elapsed
// time and output so far (from the task events). Then expected against actual output side by side with
// the difference marked, the table of tests (verdict, time, memory, exit, message), the result's texts
// and the task's own fields (long text truncated at 1000 characters with a download link for the whole).
// The page follows the task's events and patches what changed; without them it reads the task again
// every second until it is done.
import { ApiError, api, download, withQuery, type StepReport, type TaskView } from '../api';
import { outcomeBadge, statusBadge, verdictBadge } from '../badges';
import { idProblem } from '../checks';
import { comparison } from '../diff';
import { duration, h, kibibytes, localTime, morph, replace, type Child } from '../dom';
import { followEvents, type ProgressEvent } from '../events';
import type { Page } from '../page';
import { poll } from '../poll';
import type { StepLimits, TestReport } from '../../../task/types';
import { verdictOf } from '../../../task/verdicts';

/** The gateway's truncation: 1000 characters and '...'. */
const TRUNCATED_LENGTH = 1003;
/** Characters of live output the page keeps per stream (the executor sends at most 64 KiB). */
const LIVE_SHOWN_CHARS = 64 * 1024;
/** How often the elapsed time of a running task ticks on (ms). */
const TICK_MS = 250;
/** Without the events (an older gateway), the task is read again this often until it is done (ms). */
const POLL_FALLBACK_MS = 1_000;
/** Verdicts of tests that did not fail. */
const PASSED = new Set(['accepted', 'ok']);

function downloadLink(id: string, file: string, label = 'Download'): HTMLElement {
  const url = withQuery('api/task', { id, file });
  const name = `${id}_${file}.${file === 'compile_source' || file === 'execute_data' ? 'zip' : 'txt'}`;
  const link = h('a', { href: url, class: 'download', 'data-file': file, download: name }, label);
  link.addEventListener('click', (event) => {
    // With an API token the browser cannot add the header to a plain link: fetch it instead.
    event.preventDefault();
    download(url, name).catch((error: Error) => alert(error.message));
  });
  return link;
}

function truncated(text: string): boolean {
  return Array.from(text).length === TRUNCATED_LENGTH && text.endsWith('...');
}

function textValue(id: string, file: string, text: string): Child {
  if (!text) return h('span', { class: 'muted' }, '(empty)');
  const cut = truncated(text);
  return [
    h('pre', { class: 'text', 'data-field': file }, text),
    h('div', { class: 'text-actions' }, cut ? h('span', { class: 'muted small' }, 'Shown up to 1000 characters. ') : null, downloadLink(id, file, cut ? 'Download the whole file' : 'Download')),
  ];
}

function step(report: StepReport | null | undefined): Child {
  if (!report) return null;
  const facts = [
    report.exit_code !== null ? `exit code ${report.exit_code}` : null,
    report.signal ? `signal ${report.signal}` : null,
    `${duration(report.wall_ms)} wall`,
    report.cpu_ms !== null ? `${duration(report.cpu_ms)} CPU` : null,
    report.memory_kb !== null ? `${kibibytes(report.memory_kb)} peak` : null,
    report.stopped ? `stopped: ${report.stopped}` : null,
  ].filter(Boolean);
  return h('span', { class: 'muted small' }, facts.join(' · '));
}

function limits(values: StepLimits | undefined): Child {
  if (!values || Object.keys(values).length === 0) return h('span', { class: 'muted' }, 'executor defaults');
  return Object.entries(values)
    .map(([k, v]) => `${k.replace('_', ' ')} ${v}`)
    .join(', ');
}

/** Time, wall time and memory as judges report a task: the most any test took (else the execute step). */
function usage(task: TaskView): { time: number | null; wall: number | null; memory: number | null } {
  const tests = (task.result?.tests ?? []).filter((t) => t.verdict !== 'skipped');
  const most = (values: (number | null)[]) => (values.some((v) => v !== null) ? Math.max(...values.filter((v): v is number => v !== null)) : null);
  if (tests.length) return { time: most(tests.map((t) => t.time_ms)), wall: most(tests.map((t) => t.wall_ms)), memory: most(tests.map((t) => t.memory_kb)) };
  const execute = task.result?.execute;
  return { time: execute?.cpu_ms ?? null, wall: execute?.wall_ms ?? null, memory: execute?.memory_kb ?? null };
}

function exitText(test: TestReport): string {
  if (test.signal) return test.signal;
  return test.exit_code === null ? '' : String(test.exit_code);
}

/** Live state of a running task, from its events. */
interface Live {
  progress: ProgressEvent | undefined;
  /** performance.now() when the progress came, to tick the elapsed time on from it. */
  progressAt: number;
  stdout: string;
  stderr: string;
  /** The step/test the output is of (a new one starts empty). */
  outputOf: string;
}

export const taskPage: Page = (context) => {
  const id = context.params.get('id') ?? '';
  const head = h('div', { class: 'page-head' }, h('h1', null, 'Task ', h('span', { class: 'mono id' }, id)));
  const body = h('div', { id: 'task-body' }, h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…')));
  replace(context.root, head, body);
  const problem = idProblem(id);
  if (problem) {
    replace(body, h('div', { class: 'card' }, h('p', { class: 'error-text' }, problem), h('a', { href: 'search' }, 'Back to search')));
    return;
  }

  let task: TaskView | undefined;
  let missing = false;
  let cancelling = false;
  const live: Live = { progress: undefined, progressAt: 0, stdout: '', stderr: '', outputOf: '' };

  const cancel = async () => {
    cancelling = true;
    render();
    try {
      await api('DELETE', 'api/task', { query: { id } });
      context.flash('success', `Task ${id} cancelled.`);
    } catch (error) {
      context.flash('error', `Cannot cancel: ${(error as Error).message}`);
    }
    cancelling = false;
    void load();
  };

  const row = (label: string, ...value: Child[]) => h('tr', null, h('th', { scope: 'row' }, label), h('td', null, ...value));
  const fact = (label: string, value: Child, key: string) => h('div', { class: 'fact', 'data-fact': key }, h('div', { class: 'fact-value' }, value || '–'), h('div', { class: 'fact-label' }, label));

  /** The top card: verdict, status, time, memory, tests; progress and elapsed time while it runs. */
  const summary = (t: TaskView): HTMLElement => {
    const verdict = verdictOf(t);
    const used = usage(t);
    const tests = t.result?.tests ?? [];
    const passed = tests.filter((test) => PASSED.has(test.verdict)).length;
    const cancelButton = t.done
      ? null
      : h('button', { type: 'button', class: 'danger', id: 'task-cancel', disabled: cancelling, onclick: () => void cancel() }, cancelling ? 'Cancelling…' : 'Cancel task');
    const running = !t.done && live.progress;
    const elapsed = running ? live.progress!.elapsed_ms + (performance.now() - live.progressAt) : null;
    const progressText = running
      ? live.progress!.step === 'compile'
        ? 'Compiling'
        : `Running test ${live.progress!.test} of ${live.progress!.of}`
      : null;
    return h(
      'section',
      { class: 'card summary', id: 'task-summary' },
      h(
        'div',
        { class: 'summary-head' },
        h('div', { class: 'outcome', id: 'task-outcome' }, verdict ? verdictBadge(verdict, true) : outcomeBadge(t, true), verdict ? statusBadge(t.status) : null),
        h('div', { class: 'actions' }, cancelButton, h('a', { class: 'button secondary', href: 'search' }, 'Back')),
      ),
      running ? h('p', { class: 'progress', id: 'task-progress' }, progressText, ' · ', h('span', { class: 'elapsed', id: 'task-elapsed' }, duration(elapsed))) : null,
      t.result
        ? h(
            'div',
            { class: 'facts' },
            fact('Time (CPU)', duration(used.time), 'time'),
            fact('Memory (peak)', kibibytes(used.memory), 'memory'),
            fact('Wall time', duration(used.wall), 'wall'),
            tests.length ? fact('Tests passed', `${passed} / ${tests.length}`, 'tests') : null,
          )
        : null,
      h(
        'table',
        { class: 'kv', id: 'task-state' },
        h(
          'tbody',
          null,
          row('User', String(t.user)),
          row('Executor', t.executor ? h('span', { class: 'mono' }, t.executor) : h('span', { class: 'muted' }, 'none')),
          row('Added', localTime(t.add_time)),
          row('Reported', localTime(t.report_time)),
          t.retries ? row('Retries', String(t.retries)) : null,
        ),
      ),
    );
  };

  /** Expected against actual output of the first test that failed on its output. */
  const compared = (t: TaskView): HTMLElement | null => {
    const result = t.result;
    if (!result) return null;
    const tests = result.tests ?? [];
    const failed = tests.find((test) => test.verdict === 'wrong_answer' || test.verdict === 'presentation_error');
    const wrong = failed ?? (result.accepted === false && tests.length <= 1 ? tests[0] : undefined);
    if (!wrong && result.accepted !== false) return null;
    const expected = t.judge?.tests.find((test) => test.name === wrong?.name)?.output ?? t.execute.standard;
    const cut = truncated(expected) || truncated(result.execute_output) ? 'Shown up to 1000 characters.' : '';
    return h(
      'section',
      { class: 'card', id: 'task-compare' },
      h('h2', null, 'Expected and actual output', wrong && tests.length > 1 ? ` — test ${wrong.name}` : ''),
      comparison(expected, result.execute_output, cut),
    );
  };

  const testsTable = (t: TaskView): HTMLElement | null => {
    const tests = t.result?.tests ?? [];
    if (tests.length === 0) return null;
    const rows = tests.map((test, i) =>
      h(
        'tr',
        { 'data-key': `test-${test.name}` },
        h('td', { class: 'num', 'data-label': '#' }, i + 1),
        h('td', { class: 'mono cell-name' }, test.name),
        h('td', { class: 'cell-outcome' }, verdictBadge(test.verdict)),
        h('td', { class: 'num', 'data-label': 'Time' }, duration(test.time_ms)),
        h('td', { class: 'num', 'data-label': 'Wall' }, duration(test.wall_ms)),
        h('td', { class: 'num', 'data-label': 'Memory' }, kibibytes(test.memory_kb)),
        h('td', { class: 'num', 'data-label': 'Exit' }, exitText(test)),
        h('td', { class: 'cell-message', 'data-label': 'Message' }, test.message),
      ),
    );
    return h(
      'section',
      { class: 'card', id: 'task-tests' },
      h('h2', null, 'Tests', t.judge ? h('span', { class: 'muted small' }, ` · ${t.judge.mode === 'all' ? 'all run' : 'stopped at the first failure'} · checker: ${t.judge.checker.kind}`) : null),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'tests-table' },
          h('thead', null, h('tr', null, ['#', 'Test', 'Verdict', 'Time', 'Wall', 'Memory', 'Exit', 'Message'].map((c) => h('th', null, c)))),
          h('tbody', null, rows),
        ),
      ),
    );
  };

  const liveOutput = (t: TaskView): HTMLElement | null => {
    if (t.done || (!live.stdout && !live.stderr)) return null;
    return h(
      'section',
      { class: 'card', id: 'task-live' },
      h('h2', null, 'Output so far', live.progress?.step === 'execute' ? h('span', { class: 'muted small' }, ` · test ${live.progress.test}`) : null),
      live.stdout ? h('pre', { class: 'text live-output', 'data-stream': 'stdout' }, live.stdout) : null,
      live.stderr ? [h('h3', null, 'stderr'), h('pre', { class: 'text live-output', 'data-stream': 'stderr' }, live.stderr)] : null,
    );
  };

  const resultCard = (t: TaskView): HTMLElement => {
    const result = t.result;
    if (!result) {
      return h('section', { class: 'card muted', id: 'task-result-pending' }, t.done ? 'This task ended without a result.' : 'The result shows here as soon as the task is done.');
    }
    return h(
      'section',
      { class: 'card', id: 'task-result' },
      h('h2', null, 'Result'),
      h(
        'table',
        { class: 'kv' },
        h(
          'tbody',
          null,
          row('Compile', step(result.compile)),
          row('Compile output', textValue(t.id, 'compile_output', result.compile_output)),
          row('Compile error', textValue(t.id, 'compile_error', result.compile_error)),
          row('Execute', step(result.execute)),
          row('Execute output', textValue(t.id, 'execute_output', result.execute_output)),
          row('Execute error', textValue(t.id, 'execute_error', result.execute_error)),
        ),
      ),
    );
  };

  const fields = (t: TaskView): HTMLElement =>
    h(
      'div',
      { class: 'columns', id: 'task-fields' },
      h(
        'section',
        { class: 'card' },
        h('h2', null, 'Compile'),
        h(
          'table',
          { class: 'kv' },
          h(
            'tbody',
            null,
            row('Source', t.compile.source ? downloadLink(t.id, 'compile_source', 'Download zip') : h('span', { class: 'muted' }, 'none')),
            row('Command', textValue(t.id, 'compile_command', t.compile.command)),
            row('Timeout', t.compile.timeout ? `${t.compile.timeout} s` : 'none'),
            row('Limits', limits(t.compile.limits)),
          ),
        ),
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', null, 'Execute'),
        h(
          'table',
          { class: 'kv' },
          h(
            'tbody',
            null,
            row('Input', textValue(t.id, 'execute_input', t.execute.input)),
            row('Data', t.execute.data ? downloadLink(t.id, 'execute_data', 'Download zip') : h('span', { class: 'muted' }, 'none')),
            row('Command', textValue(t.id, 'execute_command', t.execute.command)),
            row('Timeout', t.execute.timeout ? `${t.execute.timeout} s` : 'none'),
            row('Expected output', textValue(t.id, 'execute_standard', t.execute.standard)),
            row('Limits', limits(t.execute.limits)),
            t.judge ? row('Tests', `${t.judge.tests.length} (${t.judge.mode === 'all' ? 'all run' : 'first failure stops'}), checker ${t.judge.checker.kind}`) : null,
            row('Network', t.network ? 'requested' : 'no'),
          ),
        ),
      ),
    );

  const view = (): HTMLElement => {
    const page = h('div', { id: 'task-body' });
    if (missing) {
      page.append(h('div', { class: 'card' }, h('p', { class: 'error-text' }, `There is no task ${id}.`), h('a', { href: 'search' }, 'Back to search')));
      return page;
    }
    if (!task) {
      page.append(h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…')));
      return page;
    }
    for (const section of [summary(task), liveOutput(task), compared(task), testsTable(task), resultCard(task), fields(task)]) if (section) page.append(section);
    return page;
  };
  const render = () => morph(body, view());

  let failing = false;
  let loading: Promise<void> | undefined;
  let again = false;
  /** Reads the task (one read at a time; asked again meanwhile, it reads once more after). */
  const load = (): Promise<void> => {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      try {
        task = (await api<{ task: TaskView }>('GET', 'api/task', { query: { id } })).task;
        if (task.done) {
          live.progress = undefined;
          live.stdout = live.stderr = '';
        }
        context.refreshed(true);
        failing = false;
      } catch (error) {
        if (error instanceof ApiError && error.result === 2) missing = true;
        else {
          context.refreshed(false);
          // Said once, not at every retry.
          if (!failing) context.flash('error', (error as Error).message);
          failing = true;
        }
      }
      render();
    })().finally(() => {
      loading = undefined;
      if (again) {
        again = false;
        void load();
      }
    });
    return loading;
  };

  // The elapsed time ticks on between progress events.
  const ticker = window.setInterval(() => {
    if (task && !task.done && live.progress) render();
  }, TICK_MS);
  let stopPolling = () => {};
  const stopEvents = followEvents(
    { id },
    {
      ready: () => void load(),
      task: (event) => {
        // The full task (its result, its tests) is read again when its state changes.
        if (!task || event.status !== task.status || event.done !== task.done || event.executor !== task.executor) void load();
      },
      progress: (event) => {
        live.progress = event;
        live.progressAt = performance.now();
        render();
      },
      output: (event) => {
        const of = `${event.step}/${event.test ?? 0}`;
        if (of !== live.outputOf) {
          live.outputOf = of;
          live.stdout = live.stderr = '';
        }
        live[event.stream] = (live[event.stream] + event.text).slice(0, LIVE_SHOWN_CHARS);
        render();
      },
      offline: (down) => context.refreshed(!down),
      ended: () => void load(),
      unavailable: () => {
        stopPolling = poll(async () => {
          await load();
          // A done task never changes again.
          if (task?.done || missing) stopPolling();
        }, POLL_FALLBACK_MS);
      },
    },
  );
  return () => {
    stopEvents();
    stopPolling();
    window.clearInterval(ticker);
  };
};
