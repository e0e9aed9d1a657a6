// Conversions between tasks as kv2 holds them (bytes in Buffers) and as the RPC carries them (base64).
import { briefOf, type CompletedTask, type JudgeSpec, type StepLimits, type Task, type TaskInput, type TaskResult, type TaskStatus } from '../task/types';
import type { LiveTask } from '../task/events';
import type { WireLive, WireResult, WireTask, WireTaskInput } from './contract';

const b64 = (bytes: Buffer) => bytes.toString('base64');
const bytes = (text: string | undefined) => (text ? Buffer.from(text, 'base64') : Buffer.alloc(0));

function withLimits<T extends object>(target: T, limits: StepLimits | undefined): T {
  return limits && Object.keys(limits).length ? { ...target, limits } : target;
}

function mapJudge<A, B>(judge: JudgeSpec<A>, convert: (value: A) => B): JudgeSpec<B> {
  const checker = judge.checker;
  return {
    tests: judge.tests.map((test) => ({ name: test.name, input: convert(test.input), output: convert(test.output) })),
    mode: judge.mode,
    checker:
      checker.kind === 'program'
        ? { kind: 'program', source_name: checker.source_name, source: convert(checker.source) }
        : checker.kind === 'float'
          ? { kind: 'float', error: checker.error }
          : { kind: checker.kind },
  };
}

/**
 * A task's input with its binary fields as `B`: bytes in kv2, base64 text on the wire. A mapped copy of
 * TaskInput<B>, as a type rather than an interface, so that it fits the wire schema's open object.
 */
type InputOf<B> = { [K in keyof TaskInput<B>]: TaskInput<B>[K] };

/** `task` with each binary field converted by `convert`; only the fields a client may choose are kept. */
function mapInput<A, B>(task: InputOf<A>, convert: (value: A) => B): InputOf<B> {
  const out: InputOf<B> = {
    user: task.user,
    compile: withLimits({ source: convert(task.compile.source), command: convert(task.compile.command), timeout: task.compile.timeout }, task.compile.limits),
    execute: withLimits(
      {
        input: convert(task.execute.input),
        data: convert(task.execute.data),
        command: convert(task.execute.command),
        timeout: task.execute.timeout,
        standard: convert(task.execute.standard),
      },
      task.execute.limits,
    ),
  };
  if (task.network !== undefined) out.network = task.network;
  if (task.judge !== undefined) out.judge = mapJudge(task.judge, convert);
  if (task.callback_url !== undefined) out.callback_url = task.callback_url;
  return out;
}

/** A result with its four texts as `B`. */
type ResultOf<B> = Omit<TaskResult, 'compile_output' | 'compile_error' | 'execute_output' | 'execute_error'> & {
  compile_output: B;
  compile_error: B;
  execute_output: B;
  execute_error: B;
};

function mapResult<A, B>(result: ResultOf<A>, convert: (value: A) => B): ResultOf<B> {
  const out: ResultOf<B> = {
    compile_output: convert(result.compile_output),
    compile_error: convert(result.compile_error),
    execute_output: convert(result.execute_output),
    execute_error: convert(result.execute_error),
    accepted: result.accepted ?? null,
    compile: result.compile ?? null,
    execute: result.execute ?? null,
    verdict: result.verdict ?? null,
  };
  // Results of executors before issue 17 have no tests: left out rather than made up.
  if (result.tests !== undefined) out.tests = result.tests;
  return out;
}

export function inputToWire(task: TaskInput): WireTaskInput {
  return mapInput(task, b64);
}

/** Only the fields a client may choose: id, status, executor and result are the judicator's to set. */
export function inputFromWire(wire: WireTaskInput): TaskInput {
  return mapInput(wire, bytes);
}

export function resultToWire(result: TaskResult): WireResult {
  return mapResult(result, b64);
}

export function resultFromWire(wire: WireResult): TaskResult {
  return mapResult(wire, bytes);
}

export function taskToWire(task: Task): WireTask {
  return {
    ...inputToWire(task),
    ...briefOf(task),
    retries: task.retries,
    result: task.result ? resultToWire(task.result) : null,
  };
}

export function taskFromWire(wire: WireTask): Task {
  return {
    ...inputFromWire(wire),
    id: wire.id,
    add_time: wire.add_time,
    done: wire.done,
    status: wire.status as TaskStatus,
    executor: wire.executor,
    report_time: wire.report_time,
    ...(wire.verdict !== undefined ? { verdict: wire.verdict } : {}),
    retries: wire.retries ?? 0,
    result: wire.result ? resultFromWire(wire.result) : null,
  };
}

export function completedToWire(task: CompletedTask): { id: string; status: TaskStatus; result: WireResult } {
  return { id: task.id, status: task.status, result: resultToWire(task.result) };
}

/** A live record for the wire (its output base64). */
export function liveToWire(live: LiveTask): WireLive {
  return {
    id: live.id,
    step: live.step,
    test: live.test,
    of: live.of,
    elapsed_ms: live.elapsed_ms,
    stdout: b64(live.stdout),
    stderr: b64(live.stderr),
  };
}

export function liveFromWire(wire: WireLive): LiveTask {
  return { id: wire.id, step: wire.step, test: wire.test, of: wire.of, elapsed_ms: wire.elapsed_ms, stdout: bytes(wire.stdout), stderr: bytes(wire.stderr) };
}
