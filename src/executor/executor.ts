// The executor's main module: clears what a previous run left, reaches the judicators through their RPC
// with its cluster certificate (renewed as it goes), runs the report loop (its first report registers it)
// and the tasks it brings, and stops the way the signal asks: SIGTERM drains (no new tasks, running ones
// get --drain-timeout to finish, the rest are handed back), SIGINT (or a vanished supervisor) kills the
// tasks at once and hands them back.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { isoTime } from '../common/time';
import type { ModuleContext } from '../common/module-context';
import { LiveIdentity } from '../pki/live-identity';
import { CertificateRenewer, renewalCheckInterval, renewFromJudicators } from '../pki/renewal';
import { JudicatorRpcClient } from '../rpc/client';
import { JudicatorList } from '../rpc/judicator-list';
import { createConfinement, taskPath, type Confinement } from './confinement';
import type { LimitSettings } from './limits';
import type { ExecutorConfig } from './config';
import { ReportLoop } from './report-loop';
import { TaskRun, type RunnerSettings } from './runner';
import { killRunningStepsNow } from './step';
import { detectLanguages } from './toolchains';
import { clearDataDir } from './workdir';

/** Which signal stopped us. module-process aborts `signal` for both; the drain needs to know. */
function watchSignals(): { first: () => NodeJS.Signals | undefined; dispose: () => void } {
  let first: NodeJS.Signals | undefined;
  const onTerm = () => (first ??= 'SIGTERM');
  const onInt = () => (first ??= 'SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  return {
    first: () => first,
    dispose: () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
    },
  };
}

/** The config dir says where the cluster is: no task user needs to read it. */
function protectConfig(roleDir: string, logger: Logger): void {
  try {
    fs.chmodSync(path.join(roleDir, 'config'), 0o700);
  } catch (error) {
    logger.warn({ err: describeError(error) }, 'could not make config/ private (0700)');
  }
}

export async function runExecutor({ config, logger, roleDir, signal }: ModuleContext<ExecutorConfig>): Promise<void> {
  const signals = watchSignals();
  // Even an abrupt exit (a second signal) must not leave a task running.
  const onExit = () => killRunningStepsNow();
  process.on('exit', onExit);
  try {
    await serve(config, logger, roleDir, signal, signals.first);
  } finally {
    process.off('exit', onExit);
    signals.dispose();
  }
}

async function serve(
  config: ExecutorConfig,
  logger: Logger,
  roleDir: string,
  signal: AbortSignal,
  firstSignal: () => NodeJS.Signals | undefined,
): Promise<void> {
  protectConfig(roleDir, logger);
  // Found while the confinement is set up; registered with the executor (GET /api/languages counts them).
  const languagesFound = detectLanguages(taskPath());
  const dataDir = path.resolve(roleDir, config.data_dir);
  const limits: LimitSettings = { defaults: { ...config.limits.defaults, output: config.task.output_limit }, maxima: config.limits.maxima };
  const confinement = await createConfinement(
    {
      userGroup: config.task.user_group,
      slots: config.slots,
      sandbox: config.sandbox,
      allowNetwork: config.allow_network,
      limits,
      executorName: config.name,
      roleDir,
      dataDir,
    },
    logger,
  );
  const cleared = await clearDataDir(dataDir, confinement.usesTaskUsers ? 0o711 : 0o700);
  if (cleared.dirs > 0) logger.info(cleared, `cleared ${cleared.dirs} task dir(s) left by a previous run (${cleared.killed} process(es) killed)`);

  const identity = LiveIdentity.load(path.resolve(roleDir, config.identity_dir), logger);
  const judicators = new JudicatorList(config.judicators.join, logger, config.judicators.refresh_interval * 1000);
  const rpc = new JudicatorRpcClient({ source: judicators, identity, timeoutMs: config.rpc.timeout * 1000 });
  const renewer = new CertificateRenewer({
    identity,
    renew: renewFromJudicators(() => judicators.addresses(), { timeoutMs: config.rpc.timeout * 1000 }),
    logger,
    checkEveryMs: renewalCheckInterval(identity.identity),
  });
  const started = isoTime();
  // Judicators accept reports for this name only with this key: a second process using the same name
  // (a misconfiguration) is refused instead of silently taking over this one's tasks.
  const key = randomBytes(16).toString('hex');
  const languages = await languagesFound;
  logger.info(
    { languages },
    languages.length
      ? `languages: ${languages.map((l) => `${l.name} ${l.version}`).join(', ')}`
      : 'no toolchain of a known language (gcc, g++, python3, javac and java, node, rustc, go) on the tasks\' PATH',
  );

  const settings: RunnerSettings = {
    dataDir,
    outputLimit: config.task.output_limit,
    zipLimits: { maxBytes: config.task.max_unpacked_bytes, maxFiles: config.task.max_files },
    taskMaxSize: config.task.max_size,
    confinement,
  };
  const loop = new ReportLoop(
    {
      name: config.name,
      key,
      info: { hostname: os.hostname(), slots: config.slots, started, languages, sandbox: confinement.state },
      slots: config.slots,
      reportIntervalMs: config.report_interval * 1000,
      statusDelayMs: config.status_delay * 1000,
      retryInitialMs: config.rpc.retry_initial * 1000,
      retryMaxMs: config.rpc.retry_max * 1000,
      finalReportMs: config.rpc.final_report_timeout * 1000,
      liveEveryMs: config.live_interval * 1000,
    },
    (body, { waitMs, signal: callSignal }) => rpc.call('report', body, { timeoutMs: waitMs + config.rpc.timeout * 1000, signal: callSignal }),
    (task, slot, onChange) => new TaskRun(task, slot, settings, logger, onChange),
    logger,
  );

  const background = new AbortController();
  const helpers = [judicators.run(rpc, background.signal), renewer.run(background.signal)].map((p) =>
    p.catch((error) => logger.error({ err: describeError(error) }, 'executor background task failed')),
  );
  const loopStop = new AbortController();
  const loopDone = loop.run(loopStop.signal);
  logger.info(
    { name: config.name, slots: config.slots, join: config.judicators.join, dataDir, sandbox: confinement.state.kind, certificate: identity.identity.serial, notAfter: identity.identity.notAfter.toISOString() },
    `executor ${config.name} running with ${config.slots} slot(s), task sandbox ${confinement.state.kind}, reporting to the judicators at ${config.judicators.join.join(', ')}`,
  );

  await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
  // The process signal handlers run after the one that aborted `signal`: let them record which it was.
  await new Promise((resolve) => setImmediate(resolve));
  if (firstSignal() === 'SIGTERM' && config.drain_timeout > 0) {
    const running = loop.held.length;
    logger.info({ running, drainTimeout: config.drain_timeout }, `SIGTERM: draining (${running} task(s) held, up to ${config.drain_timeout} s)`);
    loop.startDrain();
    const timer = new AbortController();
    const drained = await Promise.race([loop.idle().then(() => true), sleep(config.drain_timeout * 1000, timer.signal).then(() => false)]);
    timer.abort();
    if (!drained) logger.warn({ left: loop.held.map((r) => r.id) }, 'drain timeout reached; stopping the remaining tasks and handing them back');
  } else {
    logger.info({ held: loop.held.length }, 'stopping: killing running tasks and handing them back');
  }
  loopStop.abort();
  await loopDone;
  await loop.shutdown();
  await confinement.close?.().catch((error) => logger.warn({ err: describeError(error) }, 'could not clean up the task cgroups'));
  background.abort();
  await Promise.all(helpers);
  rpc.close();
}
