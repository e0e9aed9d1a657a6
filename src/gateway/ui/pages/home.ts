// The landing page: the original's "Khala" welcome, and the cluster at a glance (live).
import { api, type ExecutorView, type JudicatorView } from '../api';
import { h, morph, replace } from '../dom';
import { judicatorName } from './judicators';
import type { Page } from '../page';
import { poll } from '../poll';

function stat(label: string, value: string | number, note?: string): HTMLElement {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(value)), h('div', { class: 'stat-label' }, label), note ? h('div', { class: 'muted small' }, note) : null);
}

export const homePage: Page = (context) => {
  const stats = h('div', { class: 'stats' });
  replace(
    context.root,
    h(
      'section',
      { class: 'hero card' },
      h('h1', null, 'Khala'),
      h('p', { class: 'lead' }, 'Warp field stabilized.'),
      h('p', { class: 'muted' }, 'Submit command-line tasks — compile, then execute on given input — and follow them across the cluster.'),
      h('div', { class: 'actions' }, h('a', { class: 'button', href: 'search' }, 'Go Into Khala!'), h('a', { class: 'button secondary', href: 'add' }, 'Add a task')),
    ),
    stats,
  );
  return poll(async () => {
    try {
      const [judicators, executors] = await Promise.all([
        api<{ judicators: JudicatorView[] }>('GET', 'api/judicators'),
        api<{ executors: ExecutorView[] }>('GET', 'api/executors'),
      ]);
      const alive = executors.executors.filter((e) => e.alive !== false);
      const leader = judicators.judicators.find((j) => j.leader);
      morph(
        stats,
        h(
          'div',
          { class: 'stats' },
          stat('Judicators', judicators.judicators.length, leader ? `leader: ${judicatorName(leader.name)}` : 'no leader elected'),
          stat('Executors', alive.length),
          stat('Task slots', alive.reduce((n, e) => n + (e.slots ?? 0), 0)),
          stat('Free slots', alive.reduce((n, e) => n + (e.vacant ?? 0), 0)),
        ),
      );
      context.refreshed(true);
    } catch (error) {
      morph(stats, h('div', { class: 'stats' }, h('div', { class: 'card muted' }, (error as Error).message)));
      context.refreshed(false);
    }
  }, 3_000);
};
