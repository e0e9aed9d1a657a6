// A one-line progress bar for long operations (kv2 backup), drawn on stderr only when stderr is a
// terminal: in scripts and logs it draws nothing, and the command's own lines on stdout tell the steps.

/** Redraws at most this often (ms): a snapshot stream calls for every 64 KiB chunk. */
const REDRAW_MS = 100;
const BAR_WIDTH = 20;

export interface Progress {
  /** Shows `label` at done/total (units: 'bytes' or items); with total 0, the label alone. */
  update(label: string, done: number, total: number, unit?: 'bytes' | 'items'): void;
  /** Clears the bar (before a line is printed, and at the end). */
  clear(): void;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update: () => undefined, clear: () => undefined };
  let last = 0;
  let shown = false;
  return {
    update(label, done, total, unit = 'items') {
      const now = Date.now();
      if (now - last < REDRAW_MS && done < total) return;
      last = now;
      // No total: a step with no measure of its own, shown by name only.
      let line = `${label}...`;
      if (total > 0) {
        const fraction = Math.min(1, done / total);
        const filled = Math.round(fraction * BAR_WIDTH);
        const amount = unit === 'bytes' ? `${formatBytes(done)} / ${formatBytes(total)}` : `${done} / ${total}`;
        line = `${label} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${amount}`;
      }
      const width = stream.columns ?? 80;
      stream.write(`\r${line.slice(0, width - 1)}\x1b[K`);
      shown = true;
    },
    clear() {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
      last = 0;
    },
  };
}
