// A task as an executor receives it (assigned to 'test', nothing run yet), built from the few fields a
// test cares about; everything else empty. Timeouts default to 0 (none).
import { newId } from '../../src/common/ids';
import { isoTime } from '../../src/common/time';
import { packText } from '../../src/task/codec';
import { TaskStatus, type JudgeSpec, type StepLimits, type Task } from '../../src/task/types';

export interface TaskSpec {
  compile?: string;
  execute?: string;
  input?: string;
  standard?: string;
  compileTimeout?: number;
  executeTimeout?: number;
  source?: Buffer;
  data?: Buffer;
  compileLimits?: StepLimits;
  executeLimits?: StepLimits;
  network?: boolean;
  judge?: JudgeSpec;
}

export function makeTask(spec: TaskSpec): Task {
  const now = isoTime();
  return {
    id: newId(),
    user: 0,
    add_time: now,
    done: false,
    status: TaskStatus.PENDING,
    executor: 'test',
    report_time: now,
    retries: 0,
    result: null,
    compile: {
      source: spec.source ?? Buffer.alloc(0),
      command: packText(spec.compile ?? ''),
      timeout: spec.compileTimeout ?? 0,
      ...(spec.compileLimits ? { limits: spec.compileLimits } : {}),
    },
    execute: {
      input: packText(spec.input ?? ''),
      data: spec.data ?? Buffer.alloc(0),
      command: packText(spec.execute ?? ''),
      timeout: spec.executeTimeout ?? 0,
      standard: spec.standard === undefined ? Buffer.alloc(0) : packText(spec.standard),
      ...(spec.executeLimits ? { limits: spec.executeLimits } : {}),
    },
    ...(spec.network !== undefined ? { network: spec.network } : {}),
    ...(spec.judge !== undefined ? { judge: spec.judge } : {}),
  };
}
