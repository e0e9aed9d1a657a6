// A backend's transitions (one function each, given the backend's context) as the TaskTransitions
// methods of its store class: each store extends this, so that the list is bound in one place.
import type { CompletedTask, TaskInput } from '../task/types';
import type { ExecutingUpdate, RequeueReason, TaskTransitions, TransitionFunctions, WriteFence } from './task-store';

export abstract class BoundTransitions<Context> implements TaskTransitions {
  /** What the backend's transitions work with; set by the store's constructor. */
  protected abstract readonly context: Context;

  constructor(private readonly transitions: TransitionFunctions<Context>) {}

  add(task: TaskInput, id?: string) {
    return this.transitions.add(this.context, task, id);
  }

  assign(executor: string, count: number) {
    return this.transitions.assign(this.context, executor, count);
  }

  updateExecuting(executor: string, updates: readonly ExecutingUpdate[]) {
    return this.transitions.updateExecuting(this.context, executor, updates);
  }

  complete(executor: string, tasks: readonly CompletedTask[]) {
    return this.transitions.complete(this.context, executor, tasks);
  }

  release(executor: string, ids: readonly string[]) {
    return this.transitions.release(this.context, executor, ids);
  }

  requeueUnreported(executor: string, reported: ReadonlySet<string>, maxRetries: number) {
    return this.transitions.requeueUnreported(this.context, executor, reported, maxRetries);
  }

  requeueHeldBy(executor: string, options: { olderThanMs?: number; reason: RequeueReason; maxRetries: number; fence?: WriteFence }) {
    return this.transitions.requeueHeldBy(this.context, executor, options);
  }

  cancel(id: string) {
    return this.transitions.cancel(this.context, id);
  }

  deleteFinishedBefore(beforeMs: number, batch?: number, fence?: WriteFence) {
    return this.transitions.deleteFinishedBefore(this.context, beforeMs, batch, fence);
  }
}
