// A running task's live state as the executor keeps it (issue 17): the step it is in, the test it runs
// of how many, when it started, and the first LIVE_OUTPUT_MAX_BYTES of the current step's stdout and
// stderr as they come. The report loop sends a snapshot of it once the task has run a while and only
// when it changed (`version`); a task that ends before that costs a few references to its output.
import { performance } from 'node:perf_hooks';
import { LIVE_OUTPUT_MAX_BYTES, type LiveTask } from '../task/events';

class Captured {
  private chunks: Buffer[] = [];
  private size = 0;

  /** Keeps what fits; true when anything was kept. */
  push(chunk: Buffer): boolean {
    const room = LIVE_OUTPUT_MAX_BYTES - this.size;
    if (room <= 0 || chunk.length === 0) return false;
    // The chunk itself (the launcher hands each read's buffer once and never reuses it), no copy.
    const kept = chunk.subarray(0, room);
    this.chunks.push(kept);
    this.size += kept.length;
    return true;
  }

  bytes(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }
}

export class LiveState {
  /** performance.now() when the task was taken. */
  readonly startedAt = performance.now();
  /** Goes up with every change: the report loop sends the state when it differs from what it sent. */
  version = 0;
  private step: LiveTask['step'] = 'compile';
  private test = 0;
  private of = 1;
  private stdout = new Captured();
  private stderr = new Captured();

  /** A step starts: the compile step (test 0), or test `test` (1-based) of `of`; its output starts empty. */
  begin(step: LiveTask['step'], test: number, of: number): void {
    this.step = step;
    this.test = test;
    this.of = of;
    this.stdout = new Captured();
    this.stderr = new Captured();
    this.version++;
  }

  output(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    if ((stream === 'stdout' ? this.stdout : this.stderr).push(chunk)) this.version++;
  }

  /** How long the task has run (ms). */
  elapsedMs(now: number = performance.now()): number {
    return Math.round(now - this.startedAt);
  }

  snapshot(id: string): LiveTask {
    return { id, step: this.step, test: this.test, of: this.of, elapsed_ms: this.elapsedMs(), stdout: this.stdout.bytes(), stderr: this.stderr.bytes() };
  }
}
