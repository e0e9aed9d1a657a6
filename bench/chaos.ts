// `npm run chaos` (not part of `npm test`): a 3-judicator, 2-executor cluster of the built kv2 on loopback
// takes a steady stream of tasks while a random judicator or executor is killed with SIGKILL (and started
// again) every few seconds. Afterwards every accepted task must have ended exactly once with the right
// output. Bounded in time; prints its figures and exits non-zero if a task was lost or wrong.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { restartJudicator, startJudicators, type ClusterNode } from '../test/helpers/cluster';
import { killLeftovers, waitForJudicator } from '../test/helpers/kv2';
import { GatewayClient, killNode, startExecutor, startGateway, type ExecutorNode } from '../test/helpers/system';
import { waitFor } from '../test/helpers/wait';

const DURATION_S = Number(process.env.CHAOS_SECONDS ?? 90);
const KILL_EVERY_S = Number(process.env.CHAOS_KILL_EVERY ?? 8);
const SUBMIT_EVERY_MS = Number(process.env.CHAOS_SUBMIT_EVERY_MS ?? 50);

const cleanups: (() => unknown)[] = [];
const hooks = { after: (fn: () => unknown) => cleanups.push(fn) };

async function main(): Promise<number> {
  const markers = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-chaos-markers-'));
  cleanups.push(() => fs.rmSync(markers, { recursive: true, force: true }));
  fs.chmodSync(markers, 0o777);
  console.log(`chaos: ${DURATION_S} s, a kill every ${KILL_EVERY_S} s, a task every ${SUBMIT_EVERY_MS} ms`);

  let judicators: ClusterNode[] = await startJudicators(hooks, 3, ['--task-expiration', '10']);
  // Executors and the gateway join through the judicators' RPC; restarted, they keep their certificates.
  const joinVia = [...judicators];
  let executors: ExecutorNode[] = [1, 2].map((i) =>
    startExecutor(hooks, `e${i}`, joinVia, ['--main-task-vacant', '4', '--main-task-sandbox', 'none']),
  );
  const gateway = await startGateway(hooks, joinVia);
  const api = new GatewayClient(gateway.url);

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
  console.log(`submission over: ${accepted.size} accepted, ${submitErrors} refused or failed; waiting for every task to finish`);

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
  console.log(killLog.join('\n'));
  console.log(
    JSON.stringify(
      {
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
      },
      null,
      2,
    ),
  );
  const ok = unfinished === 0 && wrong === 0;
  console.log(ok ? 'chaos: every accepted task ended exactly once with the right output' : 'chaos: FAILED');
  return ok ? 0 : 1;
}

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
