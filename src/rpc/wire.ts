// Conversions between tasks as kv2 holds them (bytes in Buffers) and as the RPC carries them (base64).
import { briefOf, type CompletedTask, type StepLimits, type Task, type TaskInput, type TaskResult, type TaskStatus } from '../task/types';
import type { WireResult, WireTask, WireTaskInput } from './contract';

const b64 = (bytes: Buffer) => bytes.toString('base64');
const bytes = (text: string | undefined) => (text ? Buffer.from(text, 'base64') : Buffer.alloc(0));

function withLimits<T extends object>(target: T, limits: StepLimits | undefined): T {
  return limits && Object.keys(limits).length ? { ...target, limits } : target;
}

export function inputToWire(task: TaskInput): WireTaskInput {
  const wire: WireTaskInput = {
    user: task.user,
    compile: withLimits({ source: b64(task.compile.source), command: b64(task.compile.command), timeout: task.compile.timeout }, task.compile.limits),
    execute: withLimits(
      {
        input: b64(task.execute.input),
        data: b64(task.execute.data),
        command: b64(task.execute.command),
        timeout: task.execute.timeout,
        standard: b64(task.execute.standard),
      },
      task.execute.limits,
    ),
  };
  if (task.network !== undefined) wire.network = task.network;
  return wire;
}

/** Only the fields a client may choose: id, status, executor and result are the judicator's to set. */
export function inputFromWire(wire: WireTaskInput): TaskInput {
  const input: TaskInput = {
    user: wire.user,
    compile: withLimits({ source: bytes(wire.compile.source), command: bytes(wire.compile.command), timeout: wire.compile.timeout }, wire.compile.limits),
    execute: withLimits(
      {
        input: bytes(wire.execute.input),
        data: bytes(wire.execute.data),
        command: bytes(wire.execute.command),
        timeout: wire.execute.timeout,
        standard: bytes(wire.execute.standard),
      },
      wire.execute.limits,
    ),
  };
  if (wire.network !== undefined) input.network = wire.network;
  return input;
}

export function resultToWire(result: TaskResult): WireResult {
  return {
    compile_output: b64(result.compile_output),
    compile_error: b64(result.compile_error),
    execute_output: b64(result.execute_output),
    execute_error: b64(result.execute_error),
    accepted: result.accepted ?? null,
    compile: result.compile ?? null,
    execute: result.execute ?? null,
  };
}

export function resultFromWire(wire: WireResult): TaskResult {
  return {
    compile_output: bytes(wire.compile_output),
    compile_error: bytes(wire.compile_error),
    execute_output: bytes(wire.execute_output),
    execute_error: bytes(wire.execute_error),
    accepted: wire.accepted ?? null,
    compile: wire.compile ?? null,
    execute: wire.execute ?? null,
  };
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
    retries: wire.retries ?? 0,
    result: wire.result ? resultFromWire(wire.result) : null,
  };
}

export function completedToWire(task: CompletedTask): { id: string; status: TaskStatus; result: WireResult } {
  return { id: task.id, status: task.status, result: resultToWire(task.result) };
}
