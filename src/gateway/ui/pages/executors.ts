// Executors: every executor the judicators know, with its slots and its task sandbox, refreshing by itself.
import { sandboxSummary } from '../../../task/types';
import { api, type ExecutorView } from '../api';
import { h, localTime } from '../dom';
import type { Page } from '../page';
import { liveCard } from '../poll';

export const executorsPage: Page = (context) =>
  liveCard(context, 'Executors', 2_000, async () => {
    const { executors } = await api<{ executors: ExecutorView[] }>('GET', 'api/executors');
    if (executors.length === 0) return h('p', { class: 'empty' }, 'No executor has reported yet. Start one with ', h('code', null, 'kv2 executor --etcd-endpoints …'), '.');
    const head = h('thead', null, h('tr', null, ['Name', 'Hostname', 'Slots', 'Free', 'Started', 'Last report', 'State', 'Sandbox'].map((t) => h('th', null, t))));
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
        // Which sandbox, and what it leaves unenforced; the whole description on hover.
        h(
          'td',
          { class: 'sandbox', title: e.sandbox ? `${e.sandbox.how}\nnetwork: ${e.sandbox.network}` : 'this executor does not say (older than this gateway)' },
          h('span', { class: `badge ${e.sandbox?.kind === 'bwrap' ? 'status-success' : 'status-failed'}` }, sandboxSummary(e.sandbox)),
        ),
      ),
    );
    return h('div', { class: 'table-wrap' }, h('table', { id: 'executors-table' }, head, h('tbody', null, rows)));
  });
