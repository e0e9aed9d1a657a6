// Search: the original's filters (task id, user, time range) plus order and paging, kept in the URL so
// a search can be bookmarked; results refresh by themselves; undone tasks have a Cancel button.
import { api, type Brief } from '../api';
import { countProblem, idProblem } from '../checks';
import { h, localTime, replace } from '../dom';
import type { Page } from '../page';
import { poll } from '../poll';
import { statusBadge } from '../status-badge';

/** Rows per page (the original's page_limit). */
export const PAGE_LIMIT = 10;

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
  const results = h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…'));
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

  let stopPoll = () => {};
  const cancel = async (id: string, button: HTMLButtonElement) => {
    button.disabled = true;
    button.textContent = 'Cancelling…';
    try {
      await api('DELETE', 'api/task', { query: { id } });
      context.flash('success', `Task ${id} cancelled.`);
    } catch (error) {
      context.flash('error', `Cannot cancel task ${id}: ${(error as Error).message}`);
    }
    restart();
  };
  const pager = (pages: number) => {
    const go = (to: number) => {
      page = to;
      keepInUrl();
      restart();
    };
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
  const show = (tasks: Brief[], pages: number) => {
    if (tasks.length === 0) {
      replace(results, h('p', { class: 'empty' }, pages === 0 ? 'No task matches.' : 'No task on this page.'), pages > 1 ? pager(pages) : null);
      return;
    }
    const rows = tasks.map((task) => {
      const cancelButton = h('button', { type: 'button', class: 'danger small', 'data-cancel': task.id }, 'Cancel');
      cancelButton.addEventListener('click', () => void cancel(task.id, cancelButton));
      return h(
        'tr',
        { 'data-id': task.id },
        h('td', { class: 'mono cell-id' }, h('a', { href: `get?id=${task.id}` }, task.id)),
        h('td', { class: 'num', 'data-label': 'User' }, task.user),
        h('td', { 'data-label': 'Added' }, localTime(task.add_time)),
        h('td', null, statusBadge(task.status)),
        h('td', { 'data-label': 'Done' }, task.done ? 'Yes' : 'No'),
        h('td', { class: 'mono', 'data-label': 'Executor' }, task.executor ?? ''),
        h('td', { 'data-label': 'Reported' }, localTime(task.report_time)),
        h('td', { class: 'actions-cell' }, task.done ? null : cancelButton),
      );
    });
    replace(
      results,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'tasks-table' },
          h('thead', null, h('tr', null, ['Id', 'User', 'Added', 'Status', 'Done', 'Executor', 'Reported', ''].map((t) => h('th', null, t)))),
          h('tbody', null, rows),
        ),
      ),
      pages > 1 ? pager(pages) : null,
    );
  };
  const restart = () => {
    stopPoll();
    stopPoll = poll(async () => {
      try {
        const answer = await api<{ pages: number; tasks: Brief[] }>('GET', 'api/task/list', { query: { ...query, limit: PAGE_LIMIT, page: page - 1 } });
        if (answer.pages > 0 && page > answer.pages) {
          page = answer.pages;
          keepInUrl();
          return restart();
        }
        show(answer.tasks, answer.pages);
        context.refreshed(true);
      } catch (error) {
        replace(results, h('p', { class: 'error-text' }, (error as Error).message));
        context.refreshed(false);
      }
    }, 2_000);
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const problem = check();
    problems.hidden = !problem;
    problems.textContent = problem ?? '';
    if (problem) return;
    query = conditions();
    page = 1;
    keepInUrl();
    restart();
  });
  form.querySelector('#search-reset')!.addEventListener('click', () => {
    for (const input of [idInput, userInput, startInput, endInput]) input.value = '';
    orderInput.value = 'false';
    problems.hidden = true;
    query = {};
    page = 1;
    keepInUrl();
    restart();
  });

  query = check() ? {} : conditions();
  restart();
  return () => stopPoll();
};
