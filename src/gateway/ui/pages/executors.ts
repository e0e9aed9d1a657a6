// Executors: every executor the judicators know, with its slots, refreshing by itself.
import { api, type ExecutorView } from '../api';
import { h, localTime } from '../dom';
import type { Page } from '../page';
import { liveCard } from '../poll';

export const executorsPage: Page = (context) =>
  liveCard(context, 'Executors', 2_000, async () => {
    const { executors } = await api<{ executors: ExecutorView[] }>('GET', 'api/executors');
    if (executors.length === 0) return h('p', { class: 'empty' }, 'No executor has reported yet. Start one with ', h('code', null, 'kv2 executor --etcd-endpoints …'), '.');
    const head = h('thead', null, h('tr', null, ['Name', 'Hostname', 'Slots', 'Free', 'Started', 'Last report', 'State'].map((t) => h('th', null, t))));
    const rows = executors.map((e) =>
      h(
        'tr',
        null,
        h('td', { class: 'mono' }, e.id),
        h('td', null, e.hostname, e.host ? h('div', { class: 'muted small' }, e.host) : null),
        h('td', { class: 'num' }, e.slots ?? ''),
        h('td', { class: 'num' }, e.vacant ?? ''),
        h('td', null, localTime(e.started)),
        h('td', null, localTime(e.report_time)),
        h('td', null, e.alive === false ? h('span', { class: 'badge status-cancelled' }, 'Gone') : h('span', { class: 'badge status-success' }, 'Alive')),
      ),
    );
    return h('div', { class: 'table-wrap' }, h('table', { id: 'executors-table' }, head, h('tbody', null, rows)));
  });
