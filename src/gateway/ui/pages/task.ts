// Task: every field of one task, long text truncated at 1000 characters by the gateway with a download
// link for the whole file, the result as soon as it arrives (refreshing until the task is done), and a
// Cancel button while it is not.
import { ApiError, api, download, withQuery, type StepReport, type TaskView } from '../api';
import { idProblem } from '../checks';
import { h, localTime, replace, type Child } from '../dom';
import type { Page } from '../page';
import { poll } from '../poll';
import { statusBadge } from '../status-badge';
import type { StepLimits } from '../../../task/types';

/** The gateway's truncation: 1000 characters and '...'. */
const TRUNCATED_LENGTH = 1003;

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

function textValue(id: string, file: string, text: string): Child {
  if (!text) return h('span', { class: 'muted' }, '(empty)');
  const truncated = Array.from(text).length === TRUNCATED_LENGTH && text.endsWith('...');
  return [
    h('pre', { class: 'text', 'data-field': file }, text),
    h('div', { class: 'text-actions' }, truncated ? h('span', { class: 'muted small' }, 'Shown up to 1000 characters. ') : null, downloadLink(id, file, truncated ? 'Download the whole file' : 'Download')),
  ];
}

function step(report: StepReport | null | undefined): Child {
  if (!report) return null;
  const facts = [
    report.exit_code !== null ? `exit code ${report.exit_code}` : null,
    report.signal ? `signal ${report.signal}` : null,
    `${(report.wall_ms / 1000).toFixed(2)} s wall`,
    report.cpu_ms !== null ? `${(report.cpu_ms / 1000).toFixed(2)} s CPU` : null,
    report.memory_kb !== null ? `${(report.memory_kb / 1024).toFixed(1)} MiB peak` : null,
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

export const taskPage: Page = (context) => {
  const id = context.params.get('id') ?? '';
  const head = h('div', { class: 'page-head' }, h('h1', null, 'Task ', h('span', { class: 'mono id' }, id)));
  const body = h('div', null, h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…')));
  replace(context.root, head, body);
  const problem = idProblem(id);
  if (problem) {
    replace(body, h('div', { class: 'card' }, h('p', { class: 'error-text' }, problem), h('a', { href: 'search' }, 'Back to search')));
    return;
  }

  let cancelling = false;
  const cancel = async () => {
    cancelling = true;
    try {
      await api('DELETE', 'api/task', { query: { id } });
      context.flash('success', `Task ${id} cancelled.`);
    } catch (error) {
      context.flash('error', `Cannot cancel: ${(error as Error).message}`);
    }
    cancelling = false;
  };

  const row = (label: string, ...value: Child[]) => h('tr', null, h('th', { scope: 'row' }, label), h('td', null, ...value));
  const show = (task: TaskView) => {
    const cancelButton = task.done ? null : h('button', { type: 'button', class: 'danger', id: 'task-cancel', disabled: cancelling, onclick: () => void cancel() }, cancelling ? 'Cancelling…' : 'Cancel task');
    const result = task.result;
    replace(
      body,
      h(
        'section',
        { class: 'card' },
        h('div', { class: 'card-head' }, h('h2', null, 'State'), h('div', { class: 'actions' }, cancelButton, h('a', { class: 'button secondary', href: 'search' }, 'OK'))),
        h(
          'table',
          { class: 'kv', id: 'task-state' },
          h(
            'tbody',
            null,
            row('Status', statusBadge(task.status), result && result.accepted !== null && result.accepted !== undefined ? h('span', { class: `badge ${result.accepted ? 'status-success' : 'status-failed'} verdict` }, result.accepted ? 'Accepted' : 'Wrong answer') : null),
            row('Done', task.done ? 'Yes' : 'No'),
            row('User', String(task.user)),
            row('Executor', task.executor ? h('span', { class: 'mono' }, task.executor) : h('span', { class: 'muted' }, 'none')),
            row('Added', localTime(task.add_time)),
            row('Reported', localTime(task.report_time)),
            row('Retries', String(task.retries ?? 0)),
          ),
        ),
      ),
      h(
        'div',
        { class: 'columns' },
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
            row('Source', task.compile.source ? downloadLink(task.id, 'compile_source', 'Download zip') : h('span', { class: 'muted' }, 'none')),
            row('Command', textValue(task.id, 'compile_command', task.compile.command)),
            row('Timeout', task.compile.timeout ? `${task.compile.timeout} s` : 'none'),
            row('Limits', limits(task.compile.limits)),
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
            row('Input', textValue(task.id, 'execute_input', task.execute.input)),
            row('Data', task.execute.data ? downloadLink(task.id, 'execute_data', 'Download zip') : h('span', { class: 'muted' }, 'none')),
            row('Command', textValue(task.id, 'execute_command', task.execute.command)),
            row('Timeout', task.execute.timeout ? `${task.execute.timeout} s` : 'none'),
            row('Expected output', textValue(task.id, 'execute_standard', task.execute.standard)),
            row('Limits', limits(task.execute.limits)),
            row('Network', task.network ? 'requested' : 'no'),
          ),
        ),
      ),
      ),
      result
        ? h(
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
                row('Compile output', textValue(task.id, 'compile_output', result.compile_output)),
                row('Compile error', textValue(task.id, 'compile_error', result.compile_error)),
                row('Execute', step(result.execute)),
                row('Execute output', textValue(task.id, 'execute_output', result.execute_output)),
                row('Execute error', textValue(task.id, 'execute_error', result.execute_error)),
              ),
            ),
          )
        : h('section', { class: 'card muted', id: 'task-result-pending' }, task.done ? 'This task ended without a result.' : 'The result shows here as soon as the task is done.'),
    );
  };

  let failing = false;
  let stop = () => {};
  stop = poll(async () => {
    try {
      const { task } = await api<{ task: TaskView }>('GET', 'api/task', { query: { id } });
      show(task);
      context.refreshed(true);
      // A done task never changes again.
      if (task.done) stop();
    } catch (error) {
      if (error instanceof ApiError && error.result === 2) {
        replace(body, h('div', { class: 'card' }, h('p', { class: 'error-text' }, `There is no task ${id}.`), h('a', { href: 'search' }, 'Back to search')));
        stop();
        return;
      }
      context.refreshed(false);
      // Said once, not at every retry.
      if (!failing) context.flash('error', (error as Error).message);
      failing = true;
      return;
    }
    failing = false;
  }, 1_000);
  return () => stop();
};
