// The workloads, the same for every system:
//   (a) burst:      N trivial tasks submitted at once (a fixed number in flight), tasks/s from the first
//                   submission to the last result held by the client;
//   (b) sequential: N tasks one after another on an idle system; submit-to-start (the task's own
//                   `date +%s%N` minus the client's clock just before it submitted) and submit-to-result
//                   (the client holds the output) percentiles;
//   (c) payload:    N tasks of 64 KiB of source each printing it back (64 KiB of output), submitted at once:
//                   tasks/s and MB/s (source + output);
//   (f) judged:     N submissions of 20 tests each (issue 17), submitted at once: tests/s, every test's
//                   output checked (the floor spawns each test's command in its spawn loop).
import { forEachLimited, msBetween, wallNs, withDeadline } from './lib/clock';
import { percentile } from './lib/stats';
import { ACCEPTED, JUDGED_TESTS, makeSource, makeTests, PAYLOAD_BYTES, type BenchSystem, type Held, type TaskSpec } from './systems/system';

export interface BurstFigures {
  tasksPerSecond: number;
  megabytesPerSecond: number;
  seconds: number;
}

export interface LatencyFigures {
  startP50: number;
  startP95: number;
  startP99: number;
  resultP50: number;
  resultP95: number;
  resultP99: number;
}

/**
 * Submits `count` tasks with at most `inFlight` submissions open at once while results are collected
 * as they come; checks every output.
 */
async function burst(system: BenchSystem, count: number, inFlight: number, make: () => TaskSpec, expected: (spec: TaskSpec) => string, deadlineMs: number): Promise<BurstFigures> {
  const specs = Array.from({ length: count }, make);
  const tickets: Promise<unknown>[] = [];
  const resolvers: ((ticket: Promise<unknown>) => void)[] = [];
  for (let i = 0; i < count; i++) tickets.push(new Promise<unknown>((resolve) => resolvers.push(resolve)));
  const started = wallNs();
  const submitting = forEachLimited(count, inFlight, async (i) => {
    const ticket = system.submit(specs[i]!);
    resolvers[i]!(ticket);
    await ticket.catch(() => undefined);
  });
  const held = await withDeadline(Promise.all([system.collect(tickets), submitting]).then(([h]) => h), deadlineMs, `${count} tasks on ${system.name}`);
  checkOutputs(system, specs, held, expected);
  const last = held.reduce((max, h) => (h.heldNs > max ? h.heldNs : max), started);
  const seconds = msBetween(started, last) / 1000;
  const bytes = specs.reduce((sum, s) => sum + (s.kind === 'payload' ? 2 * PAYLOAD_BYTES : 0), 0);
  return { tasksPerSecond: count / seconds, megabytesPerSecond: bytes / 1e6 / seconds, seconds };
}

function checkOutputs(system: BenchSystem, specs: TaskSpec[], held: Held[], expected: (spec: TaskSpec) => string): void {
  let wrong = 0;
  let example = '';
  held.forEach((h, i) => {
    if (h.output !== expected(specs[i]!)) {
      wrong++;
      example ||= JSON.stringify(h.output.slice(0, 80));
    }
  });
  if (wrong > 0) throw new Error(`${system.name}: ${wrong} of ${held.length} tasks printed something else (e.g. ${example})`);
}

export function trivialBurst(system: BenchSystem, count: number, inFlight: number, deadlineMs: number): Promise<BurstFigures> {
  return burst(system, count, inFlight, () => ({ kind: 'hello' }), () => 'hello\n', deadlineMs);
}

export interface JudgedFigures {
  testsPerSecond: number;
  submissionsPerSecond: number;
  seconds: number;
}

export async function judgedBurst(system: BenchSystem, count: number, inFlight: number, deadlineMs: number): Promise<JudgedFigures> {
  const figures = await burst(system, count, inFlight, () => ({ kind: 'judged', tests: makeTests() }), () => ACCEPTED, deadlineMs);
  return { testsPerSecond: figures.tasksPerSecond * JUDGED_TESTS, submissionsPerSecond: figures.tasksPerSecond, seconds: figures.seconds };
}

export function payloadBurst(system: BenchSystem, count: number, inFlight: number, deadlineMs: number): Promise<BurstFigures> {
  return burst(system, count, inFlight, () => ({ kind: 'payload', source: makeSource() }), (spec) => (spec.kind === 'payload' ? spec.source : ''), deadlineMs);
}

export async function sequential(system: BenchSystem, count: number, deadlineMs: number): Promise<LatencyFigures> {
  const toStart: number[] = [];
  const toResult: number[] = [];
  const work = async () => {
    for (let i = 0; i < count; i++) {
      const submitted = wallNs();
      const [held] = await system.collect([system.submit({ kind: 'clock' })]);
      const started = BigInt(held!.output.trim());
      toStart.push(msBetween(submitted, started));
      toResult.push(msBetween(submitted, held!.heldNs));
    }
  };
  await withDeadline(work(), deadlineMs, `${count} sequential tasks on ${system.name}`);
  return {
    startP50: percentile(toStart, 50),
    startP95: percentile(toStart, 95),
    startP99: percentile(toStart, 99),
    resultP50: percentile(toResult, 50),
    resultP95: percentile(toResult, 95),
    resultP99: percentile(toResult, 99),
  };
}

/** A few tasks of each kind before measuring: connections opened, code paths warm, on every system alike. */
export async function warmUp(system: BenchSystem, deadlineMs: number, judged = false): Promise<void> {
  await sequential(system, 5, deadlineMs);
  await trivialBurst(system, 20, 20, deadlineMs);
  await payloadBurst(system, 4, 4, deadlineMs);
  if (judged) await judgedBurst(system, 2, 2, deadlineMs);
}
