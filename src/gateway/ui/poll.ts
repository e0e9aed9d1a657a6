// Live pages: run a refresh now and again `intervalMs` after each one finishes (never two at once),
// more slowly while the tab is hidden, until the page is left. What a refresh shows is patched in
// (dom.ts morph): only what changed moves, so a selection or the scroll position survives it.
import { h, morph, replace, type Child } from './dom';
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

/** A page of one card whose content `load` gives at every refresh, patched in (errors shown in the card). */
export function liveCard(context: PageContext, title: string, intervalMs: number, load: () => Promise<Child>): () => void {
  const body = h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(context.root, h('div', { class: 'page-head' }, h('h1', null, title)), body);
  return poll(async () => {
    try {
      morph(body, h('div', { class: 'card' }, await load()));
      context.refreshed(true);
    } catch (error) {
      morph(body, h('div', { class: 'card' }, h('p', { class: 'error-text' }, (error as Error).message)));
      context.refreshed(false);
    }
  }, intervalMs);
}
