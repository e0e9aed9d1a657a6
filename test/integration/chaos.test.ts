// The short chaos run (issue 14), part of `npm test`: 3 judicators and 2 executors of the built kv2 take a
// stream of tasks for about a minute while a judicator or an executor is SIGKILLed every few seconds
// (bench/chaos.ts; `npm run chaos` is the long one). No accepted task may be lost or end with the wrong
// output, and no result may be recorded twice; tasks run twice (their executor died under them) are
// counted and printed, not failed: running again is what recovery is.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChaos } from '../../bench/chaos';

/** About a minute of kills; CHAOS_SECONDS changes it. */
const SECONDS = Number(process.env.CHAOS_SECONDS ?? 60);

test(`${SECONDS} s of SIGKILLed judicators and executors: nothing lost, nothing wrong, no result recorded twice`, { timeout: (SECONDS + 600) * 1000 }, async (t) => {
  const figures = await runChaos({ seconds: SECONDS, killEverySeconds: Number(process.env.CHAOS_KILL_EVERY ?? 6), submitEveryMs: 100 }, t, (line) => t.diagnostic(line));
  console.log(`chaos: ${JSON.stringify(figures)}`);
  assert.ok(figures.kills >= Math.floor(SECONDS / 12), `members were killed (${figures.kills})`);
  assert.ok(figures.accepted > 0, 'tasks were accepted');
  assert.equal(figures.unfinished, 0, 'accepted tasks lost');
  assert.equal(figures.wrongOutput, 0, 'tasks with the wrong output');
  assert.equal(figures.resultsSeen, figures.accepted, 'the watch of recorded results saw every task');
  assert.equal(figures.resultsRecordedTwice, 0, 'results recorded twice');
  assert.equal(figures.tasksNeverRun, 0, 'accepted tasks that never ran');
});
