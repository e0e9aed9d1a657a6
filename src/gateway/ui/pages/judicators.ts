// Judicators: the judicators registered in etcd, and which one leads, refreshing by itself.
import { api, type JudicatorView } from '../api';
import { h } from '../dom';
import type { Page } from '../page';
import { liveCard } from '../poll';

export const judicatorsPage: Page = (context) =>
  liveCard(context, 'Judicators', 2_000, async () => {
    const { judicators } = await api<{ judicators: JudicatorView[] }>('GET', 'api/judicators');
    if (judicators.length === 0) return h('p', { class: 'empty' }, 'No judicator is registered in etcd.');
    const head = h('thead', null, h('tr', null, ['Name', 'Address', 'Role'].map((t) => h('th', null, t))));
    const rows = judicators.map((j) =>
      h(
        'tr',
        null,
        h('td', { class: 'mono' }, j.name),
        h('td', { class: 'mono' }, j.address),
        h('td', null, j.leader ? h('span', { class: 'badge status-success' }, 'Leader') : h('span', { class: 'badge status-pending' }, 'Follower')),
      ),
    );
    return h('div', { class: 'table-wrap' }, h('table', { id: 'judicators-table' }, head, h('tbody', null, rows)));
  });
