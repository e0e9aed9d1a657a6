// A small DOM toolkit for the web UI: h() builds elements (strings always become text, never HTML, so
// task output cannot inject markup), morph() patches what is shown into what should be (only what
// changed, so a selection or focus survives a live update), plus the formatting every page shares.
export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (event: Event) => void;
export type Props = Record<string, string | number | boolean | Handler | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === 'class') element.className = String(value);
    else if (key === 'value' && 'value' in element) (element as HTMLInputElement).value = String(value);
    else if (key === 'checked' && 'checked' in element) (element as HTMLInputElement).checked = Boolean(value);
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces the children of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

/** A time as the user's local time (the ISO text in the tooltip); '' stays empty. */
export function localTime(iso: string | null | undefined): HTMLElement | string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  const text = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return h('time', { datetime: iso, title: iso }, text);
}

export function clockNow(): string {
  return new Date().toLocaleTimeString();
}

export function bytes(count: number | null | undefined): string {
  if (count === null || count === undefined) return '';
  if (count < 1024) return `${count} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = count;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value >= 10 ? 0 : 1)} ${units[unit]}`;
}

/** The key a node is matched by when a list is patched: a row's data-id, or data-key. */
function keyOf(node: Node): string | undefined {
  if (node.nodeType !== Node.ELEMENT_NODE) return undefined;
  const element = node as Element;
  return element.getAttribute('data-id') ?? element.getAttribute('data-key') ?? undefined;
}

/**
 * Makes `target` look like `source` by changing only what differs: nodes that are equal are left alone
 * (so a text selection, focus or scroll position in them survives), text nodes get new text in place,
 * keyed children (data-id / data-key) are matched by key and never moved unless their order changed.
 * Event listeners are those of the nodes kept: a handler must depend only on what its node's key says.
 */
export function morph(target: Element, source: Element): void {
  for (const attribute of Array.from(target.attributes)) if (!source.hasAttribute(attribute.name)) target.removeAttribute(attribute.name);
  for (const attribute of Array.from(source.attributes)) if (target.getAttribute(attribute.name) !== attribute.value) target.setAttribute(attribute.name, attribute.value);
  morphChildren(target, source);
}

function morphChildren(target: Node, source: Node): void {
  const wantedKeys = new Set<string>();
  for (const child of Array.from(source.childNodes)) {
    const key = keyOf(child);
    if (key !== undefined) wantedKeys.add(key);
  }
  const byKey = new Map<string, Node>();
  for (const child of Array.from(target.childNodes)) {
    const key = keyOf(child);
    if (key === undefined) continue;
    // Gone first, so that the rows that stay are not moved past them (moving a node loses a selection in it).
    if (wantedKeys.has(key) && !byKey.has(key)) byKey.set(key, child);
    else target.removeChild(child);
  }
  let cursor: Node | null = target.firstChild;
  for (const wanted of Array.from(source.childNodes)) {
    const key = keyOf(wanted);
    let match: Node | undefined;
    if (key !== undefined) match = byKey.get(key);
    else if (cursor && keyOf(cursor) === undefined && cursor.nodeType === wanted.nodeType && cursor.nodeName === wanted.nodeName) match = cursor;
    if (!match) {
      target.insertBefore(wanted, cursor);
      continue;
    }
    if (key !== undefined) byKey.delete(key);
    if (match !== cursor) target.insertBefore(match, cursor);
    else cursor = cursor.nextSibling;
    if (match.isEqualNode(wanted)) continue;
    if (match.nodeType === Node.TEXT_NODE || match.nodeType === Node.COMMENT_NODE) match.nodeValue = wanted.nodeValue;
    else if (match.nodeType === Node.ELEMENT_NODE) morph(match as Element, wanted as Element);
  }
  while (cursor) {
    const next: Node | null = cursor.nextSibling;
    target.removeChild(cursor);
    cursor = next;
  }
}

/** Milliseconds as judges print them: 12 ms, 1.25 s, 2 min 03 s. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')} s`;
}

/** KiB as judges print them: 812 KiB, 12.3 MiB. */
export function kibibytes(kb: number | null | undefined): string {
  if (kb === null || kb === undefined) return '';
  return bytes(kb * 1024);
}
