// What a page gets from the app shell, and what it gives back (a cleanup that stops its refresh).
export type FlashKind = 'success' | 'error' | 'info';

export interface PageContext {
  /** The page's own area. */
  root: HTMLElement;
  /** The query of the page's URL. */
  params: URLSearchParams;
  /** Goes to another page of the app (a relative URL such as `get?id=...`), without reloading. */
  navigate(url: string, flash?: { kind: FlashKind; text: string }): void;
  /** Shows a message above the page (an error, or what just happened). */
  flash(kind: FlashKind, text: string): void;
  /** Marks the page live (refreshing) with the time of the last refresh. */
  refreshed(ok: boolean): void;
}

export type Page = (context: PageContext) => (() => void) | void;
