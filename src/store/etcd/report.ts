// A whole executor report in one call on the etcd store: the transitions it makes (complete, release,
// updateExecuting, requeueUnreported, then the redelivery of unacknowledged tasks and assign), decided by
// the same rules and pieces as transitions.ts, but written together: one read of the executor's held
// tasks (none while its held view is recent) and of the queue, side by side, then one transaction for
// every task the report changes, redelivers or claims. That is 2 round trips a report, whatever it
// carries, instead of one or two per transition (3 to 5). A task whose write lost a race, or a "no" that
// a fresher read must confirm, goes on alone through the per-task path (changes.ts perTask).
import type { ReportInput, ReportOutcome } from '../task-store';
import { RELEASE, isUnacknowledged, requeueOutcome, runningRule, unreported } from '../transition-rules';
import type { Task, TaskStatus } from '../../task/types';
import type { Applied, Loaded, Planned } from './changes';
import {
  claimRound,
  completePlan,
  discardUnused,
  etcdTransitions,
  logSendBack,
  readQueue,
  redeliveryRound,
  sendBackPlan,
  stageResults,
  type EtcdTransitionContext,
} from './transitions';
import { runSteps } from './txn';

type SendBackOutcome = 'retried' | 'abandoned' | 'skipped';

/** What a report did to one of its tasks. */
type Outcome = { kind: 'complete' | 'running'; ok: boolean } | { kind: 'release' | 'lost'; sent: SendBackOutcome };

export async function etcdReport(context: EtcdTransitionContext, executor: string, input: ReportInput): Promise<ReportOutcome> {
  const { changes } = context;
  const complete = new Map(input.complete.map((task) => [task.id, task]));
  const release = new Set(input.release.filter((id) => !complete.has(id)));
  const running = new Map<string, TaskStatus>(input.executing.filter((u) => !complete.has(u.id) && !release.has(u.id)).map((u) => [u.id, u.status]));
  const reported = new Set<string>([...complete.keys(), ...release, ...running.keys()]);
  const lostHow = unreported(input.maxRetries);
  const source = { from: 'held', executor } as const;

  // The results are staged, the held tasks and the head of the queue read, all at once.
  const [staged, held, queue] = await Promise.all([
    stageResults(context, complete.values()),
    changes.heldState(executor),
    input.vacant > 0 ? readQueue(context, input.vacant) : undefined,
  ]);
  const used = new Set<string>();
  try {
    const lost = held.tasks.filter((task) => task.meta?.acked && !reported.has(task.id)).map((task) => task.id);
    const waiting = held.tasks.filter((task) => task.meta && isUnacknowledged(task.meta, executor, reported, task.id)).slice(0, input.vacant);
    const want = input.vacant - waiting.length;

    const plans = {
      complete: completePlan(context, executor, complete, staged, used),
      release: sendBackPlan(changes, executor, RELEASE),
      lost: sendBackPlan(changes, executor, lostHow),
    };
    const plan = (task: Loaded, now: number): Planned<Outcome> => {
      if (complete.has(task.id)) return as(plans.complete(task, now), (ok) => ({ kind: 'complete', ok }));
      if (release.has(task.id)) return as(plans.release(task, now), (sent) => ({ kind: 'release', sent }));
      if (running.has(task.id)) {
        return as(changes.planned(task, runningRule(task.meta, executor, running.get(task.id)!, now, context.reportRefreshMs)), (ok) => ({ kind: 'running', ok }));
      }
      return as(plans.lost(task, now), (sent) => ({ kind: 'lost', sent }));
    };
    const ids = [...reported, ...lost];
    const results = new Map<string, Applied<Outcome>>();
    const again: string[] = [];
    const changed = changes.round(ids.map(held.entryOf), source, plan, true, results, again);
    const redelivery = redeliveryRound(changes, waiting);
    const claim = claimRound(context, executor, queue?.entries.slice(0, Math.max(0, want)) ?? []);
    const assigned: Task[] = [];
    let claimLost: number;
    try {
      // One transaction (more only past etcd's limits on one request) for the whole report.
      const steps = [...changed.steps, ...redelivery.steps, ...claim.steps];
      const applied = steps.length > 0 ? await runSteps(changes.client(), steps, changes.limits, 'record the report') : [];
      const claimsFrom = changed.steps.length + redelivery.steps.length;
      changed.settle(applied.slice(0, changed.steps.length));
      assigned.push(...redelivery.settle(applied.slice(changed.steps.length, claimsFrom)));
      claimLost = claim.settle(applied.slice(claimsFrom), assigned);
    } finally {
      claim.release();
    }
    // Lost races and "no"s from the first read: task by task, read again linearizably.
    if (again.length > 0) await changes.perTask(again, 'record the report', source, plan, { attempt: 1, results });
    // Slots still free (another judicator took some of the claims, or a redelivered task was cancelled
    // meanwhile) while the queue may hold more: filled as assign fills them.
    const short = input.vacant - assigned.length;
    const queueMore = queue !== undefined && (queue.more || queue.entries.length > claim.steps.length);
    if (short > 0 && (claimLost > 0 || queueMore)) assigned.push(...(await etcdTransitions.assign(context, executor, short)));

    const outcomeOf = (id: string) => results.get(id)?.outcome;
    for (const id of complete.keys()) {
      const outcome = outcomeOf(id);
      if (!(outcome?.kind === 'complete' && outcome.ok)) used.delete(id);
    }
    const sent = (id: string) => {
      const outcome = outcomeOf(id);
      return outcome && 'sent' in outcome ? outcome.sent : undefined;
    };
    const released = requeueOutcome([...release], sent);
    const lostOutcome = requeueOutcome(lost, sent);
    logSendBack(changes, executor, RELEASE, released);
    logSendBack(changes, executor, lostHow, lostOutcome);
    return {
      accepted: [...complete.keys()].filter((id) => (outcomeOf(id) as { ok?: boolean } | undefined)?.ok === true),
      released: released.retried,
      notHeld: [...running.keys()].filter((id) => (outcomeOf(id) as { ok?: boolean } | undefined)?.ok !== true),
      lost: lostOutcome,
      assigned,
    };
  } finally {
    await discardUnused(staged, used);
  }
}

/** A plan with its outcome told in the report's terms. */
function as<T, U>(planned: Planned<T>, outcome: (value: T) => U): Planned<U> {
  return { ...planned, outcome: outcome(planned.outcome) };
}
