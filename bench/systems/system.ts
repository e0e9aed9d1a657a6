// What every benchmarked system offers the workloads: submit a task, and hand back results once the
// client holds them. The same three task kinds run everywhere, each system spelling them its own way.
import crypto from 'node:crypto';
import type { ProcessMemory } from '../lib/memory';

/**
 * - hello: the trivial task, `sh -c 'echo hello'`;
 * - clock: prints the wall-clock time (ns) at which the task's command started, `date +%s%N`;
 * - payload: a 64 KiB source file `source.txt` shipped with the task; the command prints it back;
 * - judged (issue 17): JUDGED_TESTS tests, each an input the command reads and the output it must print
 *   (`read n; echo $((n * 2))`), run one after another in the task's slot; the result is `accepted` when
 *   every output is the expected one.
 */
export type TaskSpec = { kind: 'hello' } | { kind: 'clock' } | { kind: 'payload'; source: string } | { kind: 'judged'; tests: JudgedTest[] };

export interface JudgedTest {
  input: string;
  output: string;
}

export const HELLO_COMMAND = "sh -c 'echo hello'";
export const CLOCK_COMMAND = 'date +%s%N';
export const PAYLOAD_FILE = 'source.txt';
export const PAYLOAD_COMMAND = `cat ${PAYLOAD_FILE}`;
export const PAYLOAD_BYTES = 64 * 1024;
export const JUDGED_COMMAND = 'read n; echo $((n * 2))';
export const JUDGED_TESTS = 20;
/** What a judged task's result is when every test passed. */
export const ACCEPTED = 'accepted';

/** A judged task's tests: random numbers and their doubles. */
export function makeTests(): JudgedTest[] {
  return Array.from({ length: JUDGED_TESTS }, () => {
    const n = crypto.randomInt(1_000_000);
    return { input: `${n}\n`, output: `${2 * n}\n` };
  });
}

/** A fresh 64 KiB text, one line of base64 of random bytes (so barely compressible), different for every task. */
export function makeSource(): string {
  return `${crypto.randomBytes((PAYLOAD_BYTES / 4) * 3).toString('base64').slice(0, PAYLOAD_BYTES - 1)}\n`;
}

/** A result the client holds: the task's standard output, and when (wall clock, ns) it had it. */
export interface Held {
  output: string;
  heldNs: bigint;
}

export interface BenchSystem<T = unknown> {
  /** Short name for the table. */
  readonly name: string;
  /** Submits one task; resolves once the system has accepted it (durably, where it is durable). */
  submit(spec: TaskSpec): Promise<T>;
  /** Resolves, in order, with each task's output once the client holds it. Throws on a task that failed. */
  collect(tickets: readonly Promise<T>[]): Promise<Held[]>;
  /** Resident memory of the system's own processes now (labelled), where the benchmark measures it. */
  memory?(): ProcessMemory[];
  /** Workload (e), a cluster's only: its leader killed and started again (ms figures). */
  failover?(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/** The command line of a task kind, for the systems that run a shell command as is (a judged task's: each test's). */
export function shellCommand(spec: TaskSpec): string {
  return spec.kind === 'hello' ? HELLO_COMMAND : spec.kind === 'clock' ? CLOCK_COMMAND : spec.kind === 'judged' ? JUDGED_COMMAND : PAYLOAD_COMMAND;
}
