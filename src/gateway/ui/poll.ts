// Live pages: run a refresh now and again `intervalMs` after each one finishes (never two at once),
// more slowly while the tab is hidden, until the page is left.
import { h, replace, type Child } from './dom';
import type { PageContext } from './page';
export function poll(refresh: () => Promise<void>, intervalMs: number): () => void {
  let stopped = false;
  let timer: number | undefined;
  const tick = async () => {
    if (stopped) return;
    try {
      await refresh();
    } finally {
      if (!stopped) timer = window.setTimeout(tick, document.hidden ? intervalMs * 5 : intervalMs);
    }
  };
  const onVisible = () => {
    if (!document.hidden && !stopped) {
      window.clearTimeout(timer);
      void tick();
    }
  };
  document.addEventListener('visibilitychange', onVisible);
  void tick();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisible);
  };
}

/** A page of one card whose content `load` renders again at every refresh (errors shown in the card). */
export function liveCard(context: PageContext, title: string, intervalMs: number, load: () => Promise<Child>): () => void {
  const body = h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(context.root, h('div', { class: 'page-head' }, h('h1', null, title)), body);
  return poll(async () => {
    try {
      replace(body, await load());
      context.refreshed(true);
    } catch (error) {
      replace(body, h('p', { class: 'error-text' }, (error as Error).message));
      context.refreshed(false);
    }
  }, intervalMs);
}
