// Waiting for a task to be done, for the `wait` RPC: a client waiting for a result (the gateway's
// GET /api/task?wait=, hence `kv2 task wait`) asks once and is answered the moment the task is done,
// instead of asking again and again, each time an RPC and a store read. It waits on the store's change
// feed as `report` does (scheduler.ts): 'done' events, cluster-wide, whichever judicator ended the task.
//
// One subscription per store serves every waiting call, found by task id, so an event costs a map
// lookup however many clients wait. The feed does not repeat a 'done' it may have missed while it was
// reconnecting: a waiting call also reads its task again every DEFAULT_WAIT_RECHECK_MS.
import { Wakeup } from '../common/wakeup';
import type { StoreEvent, TaskStore } from '../store/task-store';
import type { Task } from '../task/types';

/** How often a waiting call reads its task again without having heard that it is done (ms). */
export const DEFAULT_WAIT_RECHECK_MS = 5_000;

/** The calls waiting on one store, by task id; subscribed to the store's feed while any waits. */
class DoneWaiters {
  private readonly byId = new Map<string, Set<() => void>>();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly store: TaskStore) {}

  /** Calls `wake` whenever task `id` is announced done; returns the function that stops that. */
  add(id: string, wake: () => void): () => void {
    let wakers = this.byId.get(id);
    if (!wakers) this.byId.set(id, (wakers = new Set()));
    wakers.add(wake);
    this.unsubscribe ??= this.store.subscribe((event) => this.dispatch(event));
    return () => {
      wakers.delete(wake);
      if (wakers.size === 0 && this.byId.get(id) === wakers) this.byId.delete(id);
      if (this.byId.size === 0 && this.unsubscribe) {
        this.unsubscribe();
        this.unsubscribe = undefined;
      }
    };
  }

  private dispatch(event: StoreEvent): void {
    if (event.type !== 'done') return;
    for (const wake of [...(this.byId.get(event.id) ?? [])]) wake();
  }
}

const waitersOf = new WeakMap<TaskStore, DoneWaiters>();

/**
 * Task `id` once it is done, or as it is when `timeoutMs` has passed (at once with 0), or when `signal`
 * aborts (the caller hung up: the task as last read). Undefined when there is no such task (or it was
 * deleted meanwhile). Store errors are thrown, as `get`'s are.
 */
export async function waitForTask(
  store: TaskStore,
  id: string,
  timeoutMs: number,
  signal: AbortSignal,
  recheckMs: number = DEFAULT_WAIT_RECHECK_MS,
): Promise<Task | undefined> {
  const deadline = Date.now() + Math.max(0, timeoutMs);
  let waitersFor = waitersOf.get(store);
  if (!waitersFor) waitersOf.set(store, (waitersFor = new DoneWaiters(store)));
  // Listening before the first read: a task that ends while it is being read is not missed.
  let announced = false;
  const wakeup = new Wakeup();
  const stop = waitersFor.add(id, () => {
    announced = true;
    wakeup.wake();
  });
  try {
    let task = await store.get(id);
    while (task && !task.done && !signal.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      if (!announced) {
        await wakeup.sleep(Math.min(left, recheckMs), signal);
      }
      if (signal.aborted) break;
      // Cleared before the read: an announcement that comes while it is under way makes another one.
      announced = false;
      task = await store.get(id);
    }
    return task;
  } finally {
    stop();
  }
}
