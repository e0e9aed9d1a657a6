// Judicators: the judicators of the cluster by name (the API keeps the original's etcd key paths in
// `name`; the page shows the name itself), their RPC address and which one leads; refreshed every few
// seconds and patched in. On a phone each judicator becomes a small card.
import { api, type JudicatorView } from '../api';
import { h } from '../dom';
import type { Page } from '../page';
import { liveCard } from '../poll';

/** A judicator's name from the API's `name` (the original's key path /judicator/service/<name>). */
export function judicatorName(name: string): string {
  return name.replace(/^\/?judicator\/service\//, '');
}

export const judicatorsPage: Page = (context) =>
  liveCard(context, 'Judicators', 2_000, async () => {
    const { judicators } = await api<{ judicators: JudicatorView[] }>('GET', 'api/judicators');
    if (judicators.length === 0) return h('p', { class: 'empty' }, 'No judicator is registered.');
    const head = h('thead', null, h('tr', null, ['Name', 'Address', 'Role'].map((t) => h('th', null, t))));
    const rows = judicators.map((j) =>
      h(
        'tr',
        { 'data-id': j.name },
        h('td', { class: 'mono cell-name', title: j.name }, judicatorName(j.name)),
        h('td', { class: 'mono', 'data-label': 'Address' }, j.address),
        h('td', { class: 'cell-state' }, j.leader ? h('span', { class: 'badge status-success' }, 'Leader') : h('span', { class: 'badge status-pending' }, 'Follower')),
      ),
    );
    return h('div', { class: 'table-wrap' }, h('table', { id: 'judicators-table', class: 'cards-on-phone' }, head, h('tbody', null, rows)));
  });
