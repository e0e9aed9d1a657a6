// Verdicts as judges give them (issue 17): how a test's run ended, against its limits (a test over its
// CPU time is a time limit even when it finished: the limit is measured in milliseconds), and the task's
// verdict, status and `accepted` from its tests.
import { TaskStatus, type StepReport, type TaskVerdict, type TestReport, type TestVerdict } from '../task/types';

/** The limits a test's run is judged against (null: none). */
export interface JudgedLimits {
  /** CPU time, ms. */
  cpuMs: number | null;
  /** Peak resident memory, KiB. */
  memoryKb: number | null;
  /** Wall time, ms (the step's timeout). */
  wallMs: number | null;
}

/** Verdicts of a run that did not finish normally: the task is Run failed. */
const ABNORMAL: ReadonlySet<TestVerdict> = new Set(['time_limit', 'memory_limit', 'output_limit', 'runtime_error']);
/** Verdicts of a test whose output was compared. */
const COMPARED: ReadonlySet<TestVerdict> = new Set(['accepted', 'wrong_answer', 'presentation_error']);

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function mebibytes(kb: number): string {
  return `${(kb / 1024).toFixed(1)} MiB`;
}

/**
 * The verdict of a run that did not end well, with the reason; undefined when it ran to the end with exit
 * code 0 within its limits (its output is then checked).
 */
export function runVerdict(report: StepReport, limits: JudgedLimits): { verdict: TestVerdict; message: string } | undefined {
  const { cpu_ms: cpu, memory_kb: memory } = report;
  if (report.stopped === 'memory') return { verdict: 'memory_limit', message: `stopped by the memory limit${limits.memoryKb ? ` (${mebibytes(limits.memoryKb)})` : ''}` };
  if (limits.memoryKb !== null && memory !== null && memory > limits.memoryKb) {
    return { verdict: 'memory_limit', message: `memory ${mebibytes(memory)} > ${mebibytes(limits.memoryKb)}` };
  }
  // A memory cgroup keeps the peak at its limit: a run pressed against it that was then stopped (the
  // kernel reclaiming for it may have cost it the CPU time that stopped it first) ran out of memory.
  const endedBadly = report.stopped !== null || report.signal !== null;
  if (endedBadly && limits.memoryKb !== null && memory !== null && memory >= limits.memoryKb) {
    return { verdict: 'memory_limit', message: `memory ${mebibytes(memory)}, the limit` };
  }
  if (report.stopped === 'cpu_time' || (limits.cpuMs !== null && cpu !== null && cpu > limits.cpuMs)) {
    const limit = limits.cpuMs !== null ? ` > ${seconds(limits.cpuMs)}` : '';
    return { verdict: 'time_limit', message: cpu !== null ? `CPU time ${seconds(cpu)}${limit}` : 'stopped by the CPU time limit' };
  }
  if (report.stopped === 'time') return { verdict: 'time_limit', message: `wall time ${seconds(report.wall_ms)}${limits.wallMs !== null ? ` >= ${seconds(limits.wallMs)}` : ''}` };
  if (report.stopped === 'output') return { verdict: 'output_limit', message: 'stopped by the output limit' };
  if (report.stopped === 'file_size') return { verdict: 'output_limit', message: 'stopped by the file size limit' };
  if (report.stopped === 'processes') return { verdict: 'runtime_error', message: 'stopped by the process limit' };
  if (report.signal !== null) return { verdict: 'runtime_error', message: `killed by ${report.signal}` };
  if (report.exit_code !== 0) return { verdict: 'runtime_error', message: report.exit_code === null ? 'it did not run' : `exit code ${report.exit_code}` };
  return undefined;
}

/** Characters of a test's message kept: the RPC refuses a report with a longer one (task/schema.ts). */
export const TEST_MESSAGE_CHARS = 512;

/** A test's report from its run and its verdict. */
export function testReport(name: string, run: StepReport | null, verdict: TestVerdict, message: string): TestReport {
  if (message.length > TEST_MESSAGE_CHARS) message = `${message.slice(0, TEST_MESSAGE_CHARS - 3)}...`;
  return {
    name,
    verdict,
    time_ms: run?.cpu_ms ?? null,
    wall_ms: run ? run.wall_ms : null,
    memory_kb: run?.memory_kb ?? null,
    exit_code: run?.exit_code ?? null,
    signal: run?.signal ?? null,
    message,
  };
}

/** The report of a test that did not run (an earlier one failed). */
export function skippedTest(name: string): TestReport {
  return testReport(name, null, 'skipped', '');
}

/** Whether a test with this verdict stops a first_fail run. */
export function failed(verdict: TestVerdict): boolean {
  return verdict !== 'accepted' && verdict !== 'ok' && verdict !== 'skipped';
}

/**
 * A judged task's verdict (the first test's that is neither accepted nor skipped, else accepted; ok when
 * nothing was compared), its status (Run failed when a test did not finish normally, else Success: a
 * wrong answer is a successful run) and `accepted` (null when no test got as far as a comparison).
 */
export function taskOutcome(tests: readonly TestReport[]): { verdict: TaskVerdict; status: TaskStatus; accepted: boolean | null } {
  const first = tests.find((test) => failed(test.verdict));
  const verdict: TaskVerdict = first ? (first.verdict as TaskVerdict) : tests.every((test) => test.verdict === 'ok') ? 'ok' : 'accepted';
  const status = tests.some((test) => ABNORMAL.has(test.verdict)) ? TaskStatus.RUN_FAILED : TaskStatus.SUCCESS;
  const accepted = verdict === 'accepted' ? true : tests.some((test) => COMPARED.has(test.verdict)) ? false : null;
  return { verdict, status, accepted };
}
