// `npm run chaos` (the long run, opt-in; test/integration/chaos.test.ts runs a short one in `npm test`): a
// 3-judicator, 2-executor cluster of the built kv2 on loopback takes a steady stream of tasks while a
// random judicator or executor is killed with SIGKILL (and started again) every few seconds. Afterwards
// every accepted task must have ended with the right output and its result recorded once (an etcd watch
// counts the store's finished/ entries per task); tasks run twice (an executor killed mid-task: its task
// runs again elsewhere) are counted. Bounded in time; prints its figures and exits non-zero if a task
// was lost, wrong, or recorded twice.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { etcdClient, restartJudicator, startJudicators, type ClusterNode } from '../test/helpers/cluster';
import { killLeftovers, waitForJudicator } from '../test/helpers/kv2';
import { GatewayClient, killNode, startExecutor, startGateway, type ExecutorNode } from '../test/helpers/system';
import { waitFor } from '../test/helpers/wait';
import { makeTaskSharedDir } from '../test/helpers/temp';

export interface ChaosOptions {
  /** Seconds of submissions and kills. */
  seconds: number;
  /** Seconds between two kills. */
  killEverySeconds: number;
  /** Milliseconds between two submissions. */
  submitEveryMs: number;
}

export interface ChaosFigures {
  seconds: number;
  kills: number;
  accepted: number;
  submitErrors: number;
  finishedByStatus: Record<number, number>;
  /** Accepted tasks that never ended: lost. */
  unfinished: number;
  wrongOutput: number;
  runs: number;
  tasksRunMoreThanOnce: number;
  tasksNeverRun: number;
  /** Accepted tasks whose recorded result the watch saw (all of them, or the watch saw nothing). */
  resultsSeen: number;
  /** Tasks whose result the store recorded more than once (finished/ entries written per task). */
  resultsRecordedTwice: number;
  ok: boolean;
}

/** Runs the chaos; `hooks.after` gets every cleanup (processes, temp dirs). */
export async function runChaos(options: ChaosOptions, hooks: { after: (fn: () => unknown) => void }, log: (line: string) => void = console.log): Promise<ChaosFigures> {
  const DURATION_S = options.seconds;
  const KILL_EVERY_S = options.killEverySeconds;
  const SUBMIT_EVERY_MS = options.submitEveryMs;
  const cleanups = { push: (fn: () => unknown) => hooks.after(fn) };
  // Not under /tmp: a task run without a sandbox has a /tmp of its own, and the markers must outlive it.
  const markers = makeTaskSharedDir(hooks, 'kv2-chaos-markers-');
  log(`chaos: ${DURATION_S} s, a kill every ${KILL_EVERY_S} s, a task every ${SUBMIT_EVERY_MS} ms`);

  let judicators: ClusterNode[] = await startJudicators(hooks, 3, ['--task-expiration', '10']);
  // Executors and the gateway join through the judicators' RPC; restarted, they keep their certificates.
  const joinVia = [...judicators];
  let executors: ExecutorNode[] = [1, 2].map((i) =>
    startExecutor(hooks, `e${i}`, joinVia, ['--main-task-vacant', '4', '--main-task-sandbox', 'none']),
  );
  const gateway = await startGateway(hooks, joinVia);
  const api = new GatewayClient(gateway.url);
  // Every result the store records writes the task's finished/ entry: one per task, or it was recorded twice.
  const recorded = new Map<string, number>();
  // etcd answers judicators' certificates only: the watch gets one of the cluster's CA.
  const etcd = await etcdClient(hooks, judicators.map((j) => j.clientUrl), judicators[0]!);
  const watcher = await etcd.watch().prefix('kv2/store/finished/').create();
  cleanups.push(() => watcher.cancel());
  watcher.on('put', (kv) => {
    const id = kv.key.toString().split('/').pop()!;
    recorded.set(id, (recorded.get(id) ?? 0) + 1);
  });

  const accepted = new Map<string, number>(); // id -> n
  let submitErrors = 0;
  let kills = 0;
  const killLog: string[] = [];
  const started = Date.now();
  const end = started + DURATION_S * 1000;

  const submitter = (async () => {
    let n = 0;
    while (Date.now() < end) {
      n++;
      const marker = path.join(markers, `run-${n}`);
      try {
        const answer = await api.submit({
          user: 1,
          execute_command: `echo ran >> ${marker}; echo task-${n}`,
          execute_timeout: 30,
        });
        if (answer.result === 0 && answer.id) accepted.set(answer.id, n);
        else submitErrors++;
      } catch {
        submitErrors++;
      }
      await new Promise((r) => setTimeout(r, SUBMIT_EVERY_MS));
    }
  })();

  const killer = (async () => {
    while (Date.now() + KILL_EVERY_S * 1000 < end) {
      await new Promise((r) => setTimeout(r, KILL_EVERY_S * 1000));
      const killJudicator = Math.random() < 0.5;
      if (killJudicator) {
        const index = Math.floor(Math.random() * judicators.length);
        const victim = judicators[index]!;
        killLog.push(`${((Date.now() - started) / 1000).toFixed(1)}s kill judicator ${victim.name}`);
        await killNode(victim);
        const back = restartJudicator(hooks, victim);
        judicators = judicators.map((j, i) => (i === index ? back : j));
        await waitForJudicator(back.node, back.ports.rpc, 120_000).catch((error) => killLog.push(`  ${victim.name} slow to return: ${error.message}`));
      } else {
        const index = Math.floor(Math.random() * executors.length);
        const victim = executors[index]!;
        killLog.push(`${((Date.now() - started) / 1000).toFixed(1)}s kill executor ${victim.name}`);
        await killNode(victim);
        executors = executors.map((e, i) => (i === index ? startExecutor(hooks, victim.name, joinVia, ['--main-task-vacant', '4', '--main-task-sandbox', 'none'], victim.dir) : e));
      }
      kills++;
    }
  })();

  await Promise.all([submitter, killer]);
  log(`submission over: ${accepted.size} accepted, ${submitErrors} refused or failed; waiting for every task to finish`);

  let wrong = 0;
  let unfinished = 0;
  const statuses = new Map<number, number>();
  for (const [id, n] of accepted) {
    try {
      const task = await api.waitDone(id, 180_000);
      statuses.set(task.status, (statuses.get(task.status) ?? 0) + 1);
      if (task.status === 5 && task.result?.execute_output !== `task-${n}\n`) wrong++;
    } catch {
      unfinished++;
    }
  }
  let runs = 0;
  let ranTwice = 0;
  let neverRan = 0;
  for (const [, n] of accepted) {
    const file = path.join(markers, `run-${n}`);
    const count = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
    runs += count;
    if (count > 1) ranTwice++;
    if (count === 0) neverRan++;
  }
  const seconds = (Date.now() - started) / 1000;
  // The watch may lag the last results by a moment.
  await waitFor(() => [...accepted.keys()].every((id) => recorded.has(id)) || undefined, { what: 'the watch to see every result', timeoutMs: 10_000 }).catch(() => undefined);
  const recordedTwice = [...accepted.keys()].filter((id) => (recorded.get(id) ?? 0) > 1).length;
  log(killLog.join('\n'));
  const ok = unfinished === 0 && wrong === 0 && recordedTwice === 0;
  const figures: ChaosFigures = {
    seconds: Number(seconds.toFixed(1)),
    kills,
    accepted: accepted.size,
    submitErrors,
    finishedByStatus: Object.fromEntries(statuses),
    unfinished,
    wrongOutput: wrong,
    runs,
    tasksRunMoreThanOnce: ranTwice,
    tasksNeverRun: neverRan,
    resultsSeen: [...accepted.keys()].filter((id) => recorded.has(id)).length,
    resultsRecordedTwice: recordedTwice,
    ok,
  };
  log(JSON.stringify(figures, null, 2));
  log(ok ? 'chaos: every accepted task ended with the right output, its result recorded once' : 'chaos: FAILED');
  return figures;
}

async function main(): Promise<number> {
  const figures = await runChaos(
    {
      seconds: Number(process.env.CHAOS_SECONDS ?? 90),
      killEverySeconds: Number(process.env.CHAOS_KILL_EVERY ?? 8),
      submitEveryMs: Number(process.env.CHAOS_SUBMIT_EVERY_MS ?? 50),
    },
    hooks,
  );
  return figures.ok ? 0 : 1;
}

const cleanups: (() => unknown)[] = [];
const hooks = { after: (fn: () => unknown) => cleanups.push(fn) };

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main()
  .then(async (code) => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
    process.exit(code);
  })
  .catch(async (error) => {
    console.error(`chaos: ${error instanceof Error ? error.stack : String(error)}`);
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
    for (const dir of fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith('kv2-'))) killLeftovers(path.join(os.tmpdir(), dir));
    process.exit(1);
  });
}
