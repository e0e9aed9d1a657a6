// The web UI's entry: the page frame (header, navigation, messages, token dialog) and a small router
// over the original's page paths (/, /search, /add, /get, /executors, /judicators).
import { api, onTokenNeeded, storeToken, storedToken } from './api';
import { clockNow, h, replace } from './dom';
import type { FlashKind, Page, PageContext } from './page';
import { addPage } from './pages/add';
import { executorsPage } from './pages/executors';
import { homePage } from './pages/home';
import { judicatorsPage } from './pages/judicators';
import { searchPage } from './pages/search';
import { taskPage } from './pages/task';

const PAGES: Record<string, { page: Page; title: string; nav?: string }> = {
  '': { page: homePage, title: 'Home' },
  index: { page: homePage, title: 'Home' },
  search: { page: searchPage, title: 'Search tasks', nav: 'search' },
  add: { page: addPage, title: 'Add a task', nav: 'add' },
  get: { page: taskPage, title: 'Task', nav: 'search' },
  executors: { page: executorsPage, title: 'Executors', nav: 'executors' },
  judicators: { page: judicatorsPage, title: 'Judicators', nav: 'judicators' },
};

const NAV: { path: string; label: string; group: string }[] = [
  { path: 'search', label: 'Search', group: 'Task' },
  { path: 'add', label: 'Add', group: 'Task' },
  { path: 'executors', label: 'Executors', group: 'Status' },
  { path: 'judicators', label: 'Judicators', group: 'Status' },
];

const flashArea = h('div', { class: 'flash-area', role: 'status', 'aria-live': 'polite' });
const main = h('main', { id: 'page' });
const liveBadge = h('span', { class: 'live', hidden: true });
const tokenButton = h('button', { class: 'link-button', type: 'button', hidden: true }, 'Forget token');
const tokenOwner = h('span', { class: 'token-owner muted', id: 'token-owner', hidden: true });

/** Shows whose token the browser holds (GET /api/whoami), or nothing without one. */
async function showTokenOwner(): Promise<void> {
  if (!storedToken()) {
    tokenOwner.hidden = true;
    return;
  }
  try {
    const who = await api<{ admin: boolean; user: number | null }>('GET', 'api/whoami');
    tokenOwner.textContent = who.admin ? 'Token: admin' : `Token: user ${who.user}`;
    tokenOwner.hidden = false;
  } catch {
    tokenOwner.hidden = true;
  }
}
const navLinks = NAV.map((item) => h('a', { href: item.path, 'data-nav': item.path }, item.label));
let cleanup: (() => void) | void;

function showFlash(kind: FlashKind, text: string): void {
  const close = h('button', { class: 'flash-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
  const message = h('div', { class: `flash flash-${kind}` }, h('span', null, text), close);
  close.addEventListener('click', () => message.remove());
  flashArea.appendChild(message);
  if (kind !== 'error') setTimeout(() => message.remove(), 8_000);
  window.scrollTo({ top: 0 });
}

function pageName(): string {
  const last = location.pathname.replace(/\/+$/, '').split('/').pop() ?? '';
  return last in PAGES ? last : '';
}

function render(): void {
  if (cleanup) cleanup();
  cleanup = undefined;
  const name = pageName();
  const entry = PAGES[name]!;
  document.title = `${entry.title} · kv2`;
  for (const link of navLinks) link.classList.toggle('active', link.dataset.nav === entry.nav);
  liveBadge.hidden = true;
  replace(main);
  const params = new URLSearchParams(location.search);
  // The original's message parameters (message_type/_title/_content), shown once as text.
  const content = params.get('message_content');
  if (content) {
    const type = params.get('message_type') ?? '';
    const title = params.get('message_title');
    showFlash(/danger|error/.test(type) ? 'error' : /success/.test(type) ? 'success' : 'info', title ? `${title} ${content}` : content);
    for (const key of ['message_type', 'message_title', 'message_content']) params.delete(key);
    const rest = params.toString();
    history.replaceState(null, '', rest ? `${location.pathname}?${rest}` : location.pathname);
  }
  const context: PageContext = {
    root: main,
    params,
    navigate,
    flash: showFlash,
    refreshed(ok) {
      liveBadge.hidden = false;
      liveBadge.classList.toggle('stale', !ok);
      liveBadge.textContent = ok ? `Live · ${clockNow()}` : `Offline · retrying`;
    },
  };
  cleanup = entry.page(context);
}

function navigate(url: string, flash?: { kind: FlashKind; text: string }): void {
  replace(flashArea);
  history.pushState(null, '', url);
  render();
  if (flash) showFlash(flash.kind, flash.text);
}

/** The token dialog: shown when the API answers 401; the token lasts for the browser session. */
function tokenDialog(reason: string): Promise<boolean> {
  return new Promise((resolve) => {
    const input = h('input', { type: 'password', id: 'token-input', autocomplete: 'off', required: true, placeholder: 'API token' });
    const dialog = h(
      'dialog',
      { class: 'token-dialog' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', null, 'API token'),
        h('p', null, reason.charAt(0).toUpperCase() + reason.slice(1)),
        h('p', { class: 'muted' }, 'It is kept in this browser tab until you close it.'),
        input,
        h('div', { class: 'actions' }, h('button', { value: 'cancel', type: 'submit', class: 'secondary', formnovalidate: true }, 'Cancel'), h('button', { value: 'ok', type: 'submit' }, 'Use token')),
      ),
    );
    document.body.appendChild(dialog);
    dialog.addEventListener('close', () => {
      const ok = dialog.returnValue === 'ok' && input.value.trim() !== '';
      if (ok) storeToken(input.value.trim());
      tokenButton.hidden = !storedToken();
      // After the request that asked goes through with it: whoami would ask again on a wrong token.
      if (ok) setTimeout(() => void showTokenOwner(), 0);
      dialog.remove();
      resolve(ok);
    });
    dialog.showModal();
  });
}

function start(): void {
  let asking: Promise<boolean> | undefined;
  onTokenNeeded((reason) => {
    // Several requests may be refused at once: ask once.
    asking ??= tokenDialog(reason).finally(() => (asking = undefined));
    return asking;
  });
  tokenButton.hidden = !storedToken();
  tokenButton.addEventListener('click', () => {
    storeToken(null);
    tokenButton.hidden = true;
    tokenOwner.hidden = true;
    showFlash('info', 'The API token was forgotten.');
  });
  const header = h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: './', 'data-nav': '' }, h('img', { src: 'res/icon.svg', alt: '', width: 28, height: 28 }), h('span', null, 'kv2'), h('small', null, 'Khala')),
    h('nav', { 'aria-label': 'Pages' }, navLinks),
    h('div', { class: 'topbar-right' }, liveBadge, tokenOwner, tokenButton),
  );
  const footer = h('footer', null, 'kv2 · the successor of KV2 "Khala"');
  replace(document.body, header, h('div', { class: 'container' }, flashArea, main), footer);
  // Links inside the app change the page without a reload (downloads and new tabs excepted).
  document.addEventListener('click', (event) => {
    const link = (event.target as Element | null)?.closest?.('a');
    if (!link || link.target || link.hasAttribute('download') || event.defaultPrevented) return;
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const url = new URL(link.href, location.href);
    const name = url.pathname.replace(/\/+$/, '').split('/').pop() ?? '';
    if (url.origin !== location.origin || !(name in PAGES) || url.pathname.includes('/api/')) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => render());
  render();
  void showTokenOwner();
}

start();
