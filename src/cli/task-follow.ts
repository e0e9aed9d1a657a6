// Following a task to its end for `kv2 task submit --wait` and `kv2 task wait [--follow]` (issue 17): the
// task's event stream (GET /api/task/events?id=) with a progress line on stderr (its step, test i of N,
// elapsed time) and, when asked, its output as it prints, like `nomad alloc logs -f`; a stream that
// breaks is reopened (it starts with the task as it is). A gateway without event streams is waited on
// with GET /api/task?wait= instead, as before.
import { UnavailableError } from '../common/errors';
import { EventsUnavailableError, type GatewayClient } from '../gateway/client';
import type { PresentedTask } from '../gateway/present';
import type { TaskChange } from '../task/events';
import { outcomeText } from './task-view';
import { statusName } from './shared';

/** Seconds one waiting request asks the gateway to hold it: below the 60 s proxies commonly allow. */
export const WAIT_REQUEST_S = 30;
/** Pause before an event stream that broke is opened again (ms). */
const REOPEN_PAUSE_MS = 1_000;
/** How often the progress line's clock ticks on a terminal (ms). */
const TICK_MS = 1_000;

export interface FollowOptions {
  /** Between checks of a gateway that cannot hold a request (older than `wait`), or cannot be reached (ms). */
  intervalMs: number;
  /** Give up after this long (0: never). */
  timeoutMs: number;
  /** No progress line, no output (--json). */
  quiet: boolean;
  /** Print the task's output as it comes (stdout to stdout, stderr to stderr). */
  output: boolean;
}

export interface Followed {
  task: PresentedTask;
  /** What was printed of the last step's output as it came. */
  streamed: { stdout: string; stderr: string };
}

/** The progress line on stderr: rewritten in place on a terminal, a line per change otherwise. */
class ProgressLine {
  private readonly tty = process.stderr.isTTY === true;
  private line = '';
  private lastPrinted = '';
  private shown = false;
  private readonly started = Date.now();
  private ticker: NodeJS.Timeout | undefined;

  constructor(private readonly quiet: boolean) {
    if (this.tty && !quiet) this.ticker = setInterval(() => this.draw(), TICK_MS);
  }

  set(line: string): void {
    this.line = line;
    if (this.quiet) return;
    if (this.tty) this.draw();
    else if (line !== this.lastPrinted) {
      process.stderr.write(`${line}\n`);
      this.lastPrinted = line;
    }
  }

  private draw(): void {
    if (!this.line) return;
    process.stderr.write(`\r\x1b[K${this.line} (${((Date.now() - this.started) / 1000).toFixed(1)} s)`);
    this.shown = true;
  }

  /** Output is about to be printed: the line steps aside (it comes back at the next change or tick). */
  clear(): void {
    if (this.tty && this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }

  say(text: string): void {
    if (this.quiet) return;
    this.clear();
    process.stderr.write(`${text}\n`);
  }

  end(): void {
    clearInterval(this.ticker);
    this.clear();
  }
}

function changeLine(id: string, change: Pick<TaskChange, 'status' | 'done' | 'verdict' | 'executor'>): string {
  return `task ${id}: ${outcomeText(change)}${change.executor && !change.done ? ` on ${change.executor}` : ''}`;
}

/** The task once it is done, or undefined when `timeoutMs` ran out first. */
export async function followTask(client: GatewayClient, id: string, options: FollowOptions): Promise<Followed | undefined> {
  const progress = new ProgressLine(options.quiet);
  const deadline = options.timeoutMs > 0 ? Date.now() + options.timeoutMs : Number.POSITIVE_INFINITY;
  const timer = new AbortController();
  const timeout = Number.isFinite(deadline) ? setTimeout(() => timer.abort(), options.timeoutMs) : undefined;
  const streamed = { stdout: '', stderr: '', of: '' };
  let change: TaskChange | undefined;
  try {
    progress.set(`task ${id}: waiting for it to be done`);
    for (;;) {
      try {
        for await (const event of client.events({ id }, { signal: timer.signal })) {
          const data = JSON.parse(event.data) as Record<string, unknown>;
          if (event.event === 'task') {
            change = data as unknown as TaskChange;
            progress.set(changeLine(id, change));
          } else if (event.event === 'progress' && change && !change.done) {
            const step = data.step === 'compile' ? 'compiling' : `running test ${data.test} of ${data.of}`;
            progress.set(`task ${id}: ${statusName(change.status)}, ${step}${change.executor ? ` on ${change.executor}` : ''}`);
          } else if (event.event === 'output' && options.output && !options.quiet) {
            const of = `${data.step}/${data.test ?? 0}`;
            // A new step or test: its output starts afresh.
            if (of !== streamed.of) {
              streamed.of = of;
              streamed.stdout = streamed.stderr = '';
            }
            const text = String(data.text);
            const stream = data.stream === 'stderr' ? 'stderr' : 'stdout';
            streamed[stream] += text;
            progress.clear();
            process[stream].write(text);
          }
        }
      } catch (error) {
        if (error instanceof EventsUnavailableError) {
          progress.end();
          const task = await waitForTask(client, id, { ...options, timeoutMs: Number.isFinite(deadline) ? Math.max(deadline - Date.now(), 1) : 0 });
          return task ? { task, streamed: { stdout: '', stderr: '' } } : undefined;
        }
        if (!(error instanceof UnavailableError)) throw error;
        progress.say(`task ${id}: ${error.message}; still waiting`);
      }
      if (change?.done) break;
      if (timer.signal.aborted) return undefined;
      // The stream ended or broke before the task was done: open it again (it starts with the task as it is).
      await new Promise((resolve) => setTimeout(resolve, Math.min(REOPEN_PAUSE_MS, Math.max(deadline - Date.now(), 0))));
      if (Date.now() >= deadline) return undefined;
    }
    progress.end();
    const task = await client.get(id, { noTruncate: true });
    return { task, streamed: { stdout: streamed.stdout, stderr: streamed.stderr } };
  } finally {
    clearTimeout(timeout);
    progress.end();
  }
}

/**
 * Waits with GET /api/task?wait= (a gateway without event streams): each request is held by the gateway
 * until the task is done, so the result is seen as soon as it exists, at the cost of one request per
 * WAIT_REQUEST_S. A gateway that answers a waiting request at once (one older than `wait`) is polled
 * every `intervalMs` instead.
 */
async function waitForTask(client: GatewayClient, id: string, options: FollowOptions): Promise<PresentedTask | undefined> {
  const progress = new ProgressLine(options.quiet);
  const started = Date.now();
  let longPoll = true;
  try {
    for (;;) {
      const left = options.timeoutMs > 0 ? options.timeoutMs - (Date.now() - started) : Number.POSITIVE_INFINITY;
      const waitS = longPoll ? Math.max(0, Math.min(WAIT_REQUEST_S, left / 1000)) : 0;
      const asked = Date.now();
      let task: PresentedTask | undefined;
      try {
        task = longPoll ? await client.wait(id, waitS) : await client.get(id);
      } catch (error) {
        // A gateway restarting, or a judicator failing over: keep waiting, say so.
        if (!(error instanceof UnavailableError)) throw error;
        progress.say(`task ${id}: ${error.message}; still waiting`);
      }
      if (task) {
        progress.set(changeLine(id, { status: task.status, done: task.done, verdict: task.verdict ?? null, executor: task.executor }));
        // A waiting request answers with the whole text; a poll's is cut, so the result is asked again.
        if (task.done) return longPoll ? task : await client.get(id, { noTruncate: true });
        if (longPoll && waitS >= 1 && Date.now() - asked < (waitS * 1000) / 2) longPoll = false;
      }
      if (options.timeoutMs > 0 && Date.now() - started >= options.timeoutMs) return undefined;
      if (!longPoll || !task) await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    }
  } finally {
    progress.end();
  }
}
