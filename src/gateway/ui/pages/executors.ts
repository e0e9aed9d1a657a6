// Executors: every executor the judicators know, with what it says of itself in its reports (host, slots,
// start time), its free slots, last report and task sandbox; refreshed every few seconds and patched in, so a name can
// be selected and copied. On a phone each executor becomes a small card.
import { sandboxSummary } from '../../../task/types';
import { api, type ExecutorView } from '../api';
import { h, localTime } from '../dom';
import type { Page } from '../page';
import { liveCard } from '../poll';

export const executorsPage: Page = (context) =>
  liveCard(context, 'Executors', 2_000, async () => {
    const { executors } = await api<{ executors: ExecutorView[] }>('GET', 'api/executors');
    if (executors.length === 0) return h('p', { class: 'empty' }, 'No executor has reported yet. Start one with ', h('code', null, 'kv2 executor --join <judicator> --join-token-file <file>'), '.');
    const head = h('thead', null, h('tr', null, ['Name', 'Host', 'Slots', 'Free', 'Started', 'Last report', 'State', 'Sandbox'].map((t) => h('th', null, t))));
    const rows = executors.map((e) =>
      h(
        'tr',
        { 'data-id': e.id },
        h('td', { class: 'mono cell-name' }, e.id),
        h('td', { 'data-label': 'Host' }, e.host ?? h('span', { class: 'muted' }, 'not said yet')),
        h('td', { class: 'num', 'data-label': 'Slots' }, e.slots ?? ''),
        h('td', { class: 'num', 'data-label': 'Free' }, e.vacant ?? ''),
        h('td', { 'data-label': 'Started' }, localTime(e.started)),
        h('td', { 'data-label': 'Last report' }, localTime(e.report_time)),
        h('td', { class: 'cell-state' }, e.alive === false ? h('span', { class: 'badge status-cancelled' }, 'Gone') : h('span', { class: 'badge status-success' }, 'Alive')),
        // Which sandbox, and what it leaves unenforced; the whole description on hover.
        h(
          'td',
          { class: 'sandbox', 'data-label': 'Sandbox', title: e.sandbox ? `${e.sandbox.how}\nnetwork: ${e.sandbox.network}` : 'this executor does not say (older than this gateway)' },
          h('span', { class: `badge ${e.sandbox?.kind === 'bwrap' ? 'status-success' : 'status-failed'}` }, sandboxSummary(e.sandbox)),
        ),
      ),
    );
    return h('div', { class: 'table-wrap' }, h('table', { id: 'executors-table', class: 'cards-on-phone' }, head, h('tbody', null, rows)));
  });
