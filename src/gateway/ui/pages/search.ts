// Search: the original's filters (task id, user, time range) plus order and paging, kept in the URL so
// a search can be bookmarked; each task's verdict first (its status while it has none); undone tasks have
// a Cancel button. The list follows the task events: a change patches its row in place (a selected id
// stays selected), a new task appears on top of the first page.
import { api, type Brief } from '../api';
import { outcomeBadge, statusName } from '../badges';
import { countProblem, idProblem, idTime } from '../checks';
import { append, h, localTime, morph, replace } from '../dom';
import { followEvents, type TaskEvent } from '../events';
import type { Page } from '../page';
import { TaskStatus } from '../../../task/types';
import { poll } from '../poll';

/** Rows per page (the original's page_limit). */
export const PAGE_LIMIT = 10;
/** Without the events (an older gateway), the list is read again this often (ms). */
const POLL_FALLBACK_MS = 3_000;

/** `datetime-local` value (local time) of an ISO time, and back. */
function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function fromLocalInput(value: string): string {
  return value ? new Date(value).toISOString() : '';
}

export const searchPage: Page = (context) => {
  const params = context.params;
  const field = (name: string, label: string, input: HTMLInputElement | HTMLSelectElement) =>
    h('label', { class: 'field' }, h('span', null, label), input);
  const idInput = h('input', { name: 'id', id: 'search-id', value: params.get('id') ?? '', placeholder: '24 hex characters', autocomplete: 'off', spellcheck: 'false' });
  const userInput = h('input', { name: 'user', id: 'search-user', value: params.get('user') ?? '', inputmode: 'numeric', placeholder: 'any' });
  const startInput = h('input', { name: 'start_time', id: 'search-start', type: 'datetime-local', value: toLocalInput(params.get('start_time')) });
  const endInput = h('input', { name: 'end_time', id: 'search-end', type: 'datetime-local', value: toLocalInput(params.get('end_time')) });
  const orderInput = h(
    'select',
    { name: 'old_to_new', id: 'search-order' },
    h('option', { value: 'false' }, 'Newest first'),
    h('option', { value: 'true' }, 'Oldest first'),
  );
  orderInput.value = params.get('old_to_new') === 'true' ? 'true' : 'false';
  const problems = h('p', { class: 'error-text', hidden: true });
  const form = h(
    'form',
    { class: 'card filters', id: 'search-form' },
    h(
      'div',
      { class: 'grid' },
      field('id', 'Task id', idInput),
      field('user', 'User id', userInput),
      field('start_time', 'Added from', startInput),
      field('end_time', 'Added until', endInput),
      field('old_to_new', 'Order', orderInput),
    ),
    problems,
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'search-button' }, 'Search'), h('button', { type: 'button', class: 'secondary', id: 'search-reset' }, 'Reset')),
  );
  const results = h('div', { class: 'card', id: 'search-results' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(context.root, h('div', { class: 'page-head' }, h('h1', null, 'Search tasks'), h('a', { class: 'button', href: 'add' }, 'Add a task')), form, results);

  let page = Math.max(1, Number(params.get('page')) || 1);
  let query: Record<string, string> = {};
  const conditions = () => {
    const next: Record<string, string> = {};
    if (idInput.value.trim()) next.id = idInput.value.trim();
    if (userInput.value.trim()) next.user = userInput.value.trim();
    if (startInput.value) next.start_time = fromLocalInput(startInput.value);
    if (endInput.value) next.end_time = fromLocalInput(endInput.value);
    if (orderInput.value === 'true') next.old_to_new = 'true';
    return next;
  };
  const check = (): string | undefined => {
    if (idInput.value.trim()) {
      const problem = idProblem(idInput.value.trim());
      if (problem) return problem;
    }
    if (userInput.value.trim()) return countProblem(userInput.value, 'User id');
    if (startInput.value && endInput.value && new Date(startInput.value) > new Date(endInput.value)) return 'The start of the time range is after its end.';
    return undefined;
  };
  const keepInUrl = () => {
    const search = new URLSearchParams({ ...query, ...(page > 1 ? { page: String(page) } : {}) }).toString();
    history.replaceState(null, '', search ? `search?${search}` : 'search');
  };

  const cancelling = new Set<string>();
  const cancel = async (id: string) => {
    cancelling.add(id);
    render();
    try {
      await api('DELETE', 'api/task', { query: { id } });
      context.flash('success', `Task ${id} cancelled.`);
    } catch (error) {
      context.flash('error', `Cannot cancel task ${id}: ${(error as Error).message}`);
    }
    cancelling.delete(id);
    // The change comes with the events; without them (polling), read the page again now.
    if (!streaming) void load();
    else render();
  };
  const go = (to: number) => {
    page = to;
    keepInUrl();
    void load();
  };
  const pager = (pages: number) => {
    const select = h('select', { 'aria-label': 'Page', id: 'search-page' }, Array.from({ length: pages }, (_, i) => h('option', { value: i + 1 }, `Page ${i + 1} of ${pages}`)));
    select.value = String(page);
    select.addEventListener('change', () => go(Number(select.value)));
    return h(
      'div',
      { class: 'pager' },
      h('button', { type: 'button', class: 'secondary', disabled: page <= 1, onclick: () => go(page - 1) }, query.old_to_new ? '‹ Older' : '‹ Newer'),
      select,
      h('button', { type: 'button', class: 'secondary', disabled: page >= pages, onclick: () => go(page + 1) }, query.old_to_new ? 'Newer ›' : 'Older ›'),
    );
  };

  /** What the results card shows, built whole and patched into the page (only what changed moves). */
  let shown: Brief[] = [];
  let pages = -1;
  let failure: string | undefined;
  const view = (): HTMLElement => {
    const card = h('div', { class: 'card', id: 'search-results' });
    if (failure) return append(card, [h('p', { class: 'error-text' }, failure)]), card;
    if (pages < 0) return append(card, [h('p', { class: 'muted' }, 'Loading…')]), card;
    if (shown.length === 0) {
      append(card, [h('p', { class: 'empty' }, pages === 0 ? 'No task matches.' : 'No task on this page.'), pages > 1 ? pager(pages) : null]);
      return card;
    }
    const rows = shown.map((task) => {
      const busy = cancelling.has(task.id);
      const cancelButton = h('button', { type: 'button', class: 'danger small', 'data-cancel': task.id, disabled: busy, onclick: () => void cancel(task.id) }, busy ? 'Cancelling…' : 'Cancel');
      return h(
        'tr',
        { 'data-id': task.id },
        h('td', { class: 'cell-outcome' }, outcomeBadge(task), task.verdict ? h('span', { class: 'muted small status-second' }, statusName(task.status)) : null),
        h('td', { class: 'mono cell-id' }, h('a', { href: `get?id=${task.id}` }, task.id)),
        h('td', { class: 'num', 'data-label': 'User' }, task.user),
        h('td', { 'data-label': 'Added' }, localTime(task.add_time)),
        h('td', { class: 'mono', 'data-label': 'Executor' }, task.executor ?? ''),
        h('td', { class: 'actions-cell' }, task.done ? null : cancelButton),
      );
    });
    append(card, [
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'tasks-table' },
          h('thead', null, h('tr', null, ['Verdict', 'Id', 'User', 'Added', 'Executor', ''].map((t) => h('th', null, t)))),
          h('tbody', null, rows),
        ),
      ),
      pages > 1 ? pager(pages) : null,
    ]);
    return card;
  };
  const render = () => morph(results, view());

  let loading = 0;
  const load = async () => {
    const asked = ++loading;
    try {
      const answer = await api<{ pages: number; tasks: Brief[] }>('GET', 'api/task/list', { query: { ...query, limit: PAGE_LIMIT, page: page - 1 } });
      if (asked !== loading) return; // a newer search or page is under way
      if (answer.pages > 0 && page > answer.pages) {
        page = answer.pages;
        keepInUrl();
        return load();
      }
      shown = answer.tasks;
      pages = answer.pages;
      failure = undefined;
      context.refreshed(true);
    } catch (error) {
      if (asked !== loading) return;
      failure = (error as Error).message;
      context.refreshed(false);
    }
    render();
  };

  /** Whether a task added just now belongs on the page shown: the first page of newest first, its filters met. */
  const wouldList = (event: TaskEvent) => {
    if (page !== 1 || query.old_to_new || query.id) return false;
    if (query.user !== undefined && Number(query.user) !== event.user) return false;
    const added = idTime(event.id);
    if (query.start_time && added < Date.parse(query.start_time)) return false;
    if (query.end_time && added > Date.parse(query.end_time)) return false;
    return true;
  };
  /** A change the events tell: its row patched in place, a new task added on top when it belongs there. */
  const apply = (event: TaskEvent) => {
    const task = shown.find((t) => t.id === event.id);
    if (task) {
      // A done task never changes again: an event older than what was read is not shown over it.
      if (task.done && !event.done) return;
      Object.assign(task, { status: event.status, done: event.done, verdict: event.verdict, executor: event.executor });
    } else if (!event.done && event.status === 0 && wouldList(event)) {
      const added = new Date(idTime(event.id)).toISOString();
      shown = [{ id: event.id, user: event.user, add_time: added, done: false, status: TaskStatus.PENDING, executor: event.executor, report_time: added, verdict: null }, ...shown].slice(0, PAGE_LIMIT);
      if (pages < 1) pages = 1;
    } else return;
    render();
  };

  let streaming = false;
  let stopPolling = () => {};
  const stopEvents = followEvents(
    {},
    {
      ready: () => {
        streaming = true;
        void load();
      },
      task: apply,
      offline: (down) => context.refreshed(!down),
      unavailable: () => {
        // An older gateway without events: read the page every few seconds (patched in the same way).
        streaming = false;
        stopPolling = poll(load, POLL_FALLBACK_MS);
      },
    },
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const problem = check();
    problems.hidden = !problem;
    problems.textContent = problem ?? '';
    if (problem) return;
    query = conditions();
    page = 1;
    keepInUrl();
    void load();
  });
  form.querySelector('#search-reset')!.addEventListener('click', () => {
    for (const input of [idInput, userInput, startInput, endInput]) input.value = '';
    orderInput.value = 'false';
    problems.hidden = true;
    query = {};
    page = 1;
    keepInUrl();
    void load();
  });

  query = check() ? {} : conditions();
  return () => {
    stopEvents();
    stopPolling();
  };
};
