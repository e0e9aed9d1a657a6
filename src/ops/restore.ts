// `kv2 restore <dir>`: the maintenance page's disaster recovery from a kv2 backup, for the one judicator
// to bring back (SPEC §9). It checks the backup whole (a damaged one changes nothing), makes sure no
// judicator runs in that work dir (or that its modules are stopped under `kv2 maintain`, the page's way),
// copies snapshot.db into judicator/data/etcd_init/ and, for a MongoDB store, builds
// judicator/data/mongodb_init from the dump. The judicator's next start then does the rest by itself:
// its etcd module restores a snapshot found in etcd_init as a new one-member cluster, moving the old data
// dir aside (src/etcd/member-data.ts restoreFromInitDir), and empties etcd_init, so a later restart does
// not restore again. No config change is needed for that, unlike the page's procedure: `cluster` in
// config/etcd.json only matters to a member without data, and a restored member has data. A backup that
// holds the cluster CA puts it back in judicator/data/pki (a different CA found there is moved aside), so
// the cluster keeps its identity: the certificates of its nodes and its join tokens stay good.
import fs from 'node:fs';
import path from 'node:path';
import { BusyError, Kv2Error, UsageError, describeError } from '../common/errors';
import { isAlive } from '../common/processes';
import { configPath } from '../boot/config-files';
import { PidFileLock, readPidFile } from '../boot/pid-lock';
import { IDENTITY_DIR } from '../boot/join-flags';
import { judicatorConfigSchema } from '../judicator/config';
import { caFingerprint } from '../pki/fingerprint';
import { IDENTITY_FILES, identityPaths, prepareIdentityDir } from '../pki/identity-files';
import { MONGODUMP_DIR, SNAPSHOT_FILE, sha256File, type Manifest } from './backup-manifest';
import { formatVerifyReport, verifyBackup } from './backup-verify';
import { commandLogger, describeCounts, type CommandOutput } from './backup';
import { buildMongodbData, findRestoreMongod } from './mongodb-init';
import { formatBytes } from './progress';

export interface RestoreOptions {
  /** The backup. */
  dir: string;
  /** `--work-dir` of the judicator to bring back. */
  workDir: string;
  /** Replace what an earlier, not yet started restore left in etcd_init / mongodb_init. */
  force: boolean;
  /** `--mongodb-exe`: the mongod that loads a MongoDB dump. */
  mongodbExe?: string;
}

/** A damaged backup: restore refuses it before changing anything. */
export class DamagedBackupError extends Kv2Error {}

/** The judicator's modules, as pid files under judicator/data/ (mongodb only where it runs). */
const MODULES = ['etcd', 'mongodb', 'main'] as const;

interface WorkDirState {
  /** A supervisor runs, with its modules stopped under kv2 maintain: the restore happens when the shell exits. */
  underMaintenance?: { supervisorPid: number };
}

function readJson(file: string): Record<string, any> | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a running kv2 module process (not a reused pid of something else). */
function moduleRunning(pid: number | undefined): boolean {
  if (pid === undefined || !isAlive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('__module');
  } catch {
    return false;
  }
}

/**
 * Refuses (BusyError) while a judicator runs in the work dir. A supervisor may run only when every module
 * of the judicator is stopped and its pid file locked by someone else (kv2 maintain), as the maintenance
 * page does it: the supervisor then starts nothing until the shell exits.
 */
export function checkJudicatorStopped(workDir: string): WorkDirState {
  const dataDir = path.join(workDir, 'judicator', 'data');
  for (const bootDir of ['judicator', 'standalone']) {
    const supervisor = new PidFileLock(path.join(workDir, bootDir, 'data', 'boot.pid'), 'kv2 restore').holder();
    if (!supervisor) continue;
    const present = MODULES.filter((m) => m !== 'mongodb' || fs.existsSync(path.join(dataDir, `${m}.pid`)));
    const maintained = present.every((module) => {
      const pidFile = path.join(dataDir, `${module}.pid`);
      const holder = new PidFileLock(pidFile, 'kv2 restore').holder();
      return holder !== undefined && holder.pid !== supervisor.pid && !moduleRunning(readPidFile(pidFile));
    });
    if (maintained) return { underMaintenance: { supervisorPid: supervisor.pid } };
    const pidFiles = present.map((m) => `judicator/data/${m}.pid`).join(' ');
    throw new BusyError(
      `a kv2 ${bootDir} supervisor (pid ${supervisor.pid}) is running in ${workDir}: stop it first ` +
        `(kill -TERM ${supervisor.pid}, or systemctl stop kv2-judicator), then run kv2 restore again. ` +
        `(Or, as the maintenance page does it, run kv2 restore inside "kv2 maintain ${pidFiles}" after stopping those modules.) Nothing was changed`,
    );
  }
  for (const module of MODULES) {
    const pid = readPidFile(path.join(dataDir, `${module}.pid`));
    if (moduleRunning(pid)) {
      throw new BusyError(`the judicator's ${module} module (pid ${pid}) is still running in ${workDir}: stop it first (kill -INT ${pid}). Nothing was changed`);
    }
  }
  return {};
}

/** Refuses an init dir that holds something (an earlier restore never started?) unless --force. */
function checkInitDir(dir: string, force: boolean): void {
  if (force || !fs.existsSync(dir) || fs.readdirSync(dir).length === 0) return;
  throw new UsageError(
    `${dir} is not empty (${fs.readdirSync(dir).join(', ')}): an earlier restore that was never started, or a manual one? ` +
      'Give --force to move its content aside and use this backup instead. Nothing was changed',
  );
}

/** Makes `dir` an empty directory; what was in it is moved aside (checkInitDir allowed it). */
function emptyInitDir(dir: string, say: (line: string) => void): void {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    const aside = `${dir}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(dir, aside);
    say(`  moved what was in ${dir} aside to ${aside}`);
  }
  fs.mkdirSync(dir, { recursive: true });
}

/** Prepares the judicator of `options.workDir` to come back from the backup; returns the backup's manifest. */
export async function runRestore(options: RestoreOptions, out: CommandOutput): Promise<Manifest> {
  const backupDir = path.resolve(options.dir);
  const workDir = path.resolve(options.workDir);
  const roleDir = path.join(workDir, 'judicator');
  const dataDir = path.join(roleDir, 'data');
  const say = (line: string) => {
    out.progress.clear();
    out.say(line);
  };
  say(`kv2 restore: bringing back the judicator in ${workDir} from the backup in ${backupDir}`);

  say('step 1: checking the backup');
  const report = await verifyBackup(backupDir, (what) => out.progress.update(`checking ${what}`, 0, 0));
  for (const line of formatVerifyReport(report)) say(`  ${line}`);
  if (report.problems.length > 0) {
    throw new DamagedBackupError(`the backup in ${backupDir} is damaged (${report.problems[0]}${report.problems.length > 1 ? `, and ${report.problems.length - 1} more` : ''}); nothing was restored and nothing was changed`);
  }
  const manifest = report.manifest!;

  say(`step 2: checking that no judicator runs in ${workDir}`);
  if (fs.existsSync(workDir) && !fs.statSync(workDir).isDirectory()) throw new UsageError(`--work-dir ${workDir} is a file, not a directory`);
  const state = checkJudicatorStopped(workDir);
  if (state.underMaintenance) {
    say(`  the judicator supervisor (pid ${state.underMaintenance.supervisorPid}) runs, with every module stopped under kv2 maintain: the restore happens when the maintenance shell exits`);
  } else {
    say(fs.existsSync(roleDir) ? '  no judicator runs there' : `  ${roleDir} does not exist yet: a judicator that never ran there (it is created)`);
  }
  const etcdInit = path.join(dataDir, 'etcd_init');
  const mongodbInit = path.join(dataDir, 'mongodb_init');
  checkInitDir(etcdInit, options.force);
  if (manifest.store === 'mongodb') checkInitDir(mongodbInit, options.force);
  const mongod = manifest.store === 'mongodb' ? await findRestoreMongod(options.mongodbExe ?? readJson(configPath(roleDir, 'mongodb'))?.exe ?? undefined) : undefined;

  say('step 3: putting the etcd snapshot in place');
  emptyInitDir(etcdInit, say);
  const target = path.join(etcdInit, SNAPSHOT_FILE);
  // Copied under a name the etcd module does not look for (it takes *.db), checked, then renamed: a
  // half-copied snapshot is never restored.
  fs.copyFileSync(path.join(backupDir, SNAPSHOT_FILE), `${target}.partial`);
  const copied = await sha256File(`${target}.partial`);
  if (copied !== manifest.files[SNAPSHOT_FILE]!.sha256) {
    fs.rmSync(`${target}.partial`, { force: true });
    throw new Kv2Error(`the copy of ${SNAPSHOT_FILE} in ${etcdInit} does not match the backup (disk full or failing?); nothing else was changed`);
  }
  fs.renameSync(`${target}.partial`, target);
  say(`  copied ${SNAPSHOT_FILE} (${formatBytes(manifest.files[SNAPSHOT_FILE]!.size)}, revision ${manifest.etcd.revision}, sha256 checked) to ${target}`);
  const etcdData = path.join(dataDir, 'etcd');
  if (fs.existsSync(etcdData) && fs.readdirSync(etcdData).length > 0) {
    say(`  the judicator's current etcd data (${etcdData}) is moved aside to ${etcdData}.before-restore-<time> when it starts (never deleted)`);
  }

  if (manifest.store === 'mongodb' && mongod) {
    say('step 4: building the MongoDB data from the backup\'s mongodump');
    emptyInitDir(mongodbInit, say);
    // Built next to it and renamed in: the mongodb module never copies a half-loaded data dir.
    const staging = `${mongodbInit}.building`;
    fs.rmSync(staging, { recursive: true, force: true });
    try {
      const inserted = await buildMongodbData(mongod, path.join(backupDir, MONGODUMP_DIR), staging, commandLogger('restore'));
      fs.rmdirSync(mongodbInit);
      fs.renameSync(staging, mongodbInit);
      say(`  loaded ${Object.entries(inserted).map(([c, n]) => `${c} ${n}`).join(', ')} documents with ${mongod} into ${mongodbInit}`);
    } catch (error) {
      // Undone as a whole: etcd restored without its MongoDB data would be a cluster that lost its tasks.
      fs.rmSync(staging, { recursive: true, force: true });
      fs.rmSync(target, { force: true });
      throw new Kv2Error(`could not build the MongoDB data from the dump: ${describeError(error)}. The snapshot was taken out of ${etcdInit} again: nothing will be restored`);
    }
  }

  let step = manifest.store === 'mongodb' ? 5 : 4;
  if (manifest.pki) {
    say(`step ${step++}: the cluster CA`);
    await restoreCa(path.join(backupDir, manifest.pki.dir), path.join(roleDir, IDENTITY_DIR), manifest.pki.ca_fingerprint, readJson(configPath(roleDir, 'main')), say);
  }
  say(`step ${step}: the configuration`);
  const etcdConfig = readJson(configPath(roleDir, 'etcd'));
  say(
    `  ${etcdConfig ? 'judicator/config/etcd.json needs no change' : 'nothing to change (no config yet)'}: the etcd module restores a snapshot it ` +
      'finds in data/etcd_init as a new one-member cluster by itself, whatever the cluster flags (they only matter to a member without data)',
  );
  say('');
  say(`restore prepared: ${describeCounts(manifest.counts)}, from the backup taken ${manifest.started_at}`);
  for (const line of nextSteps(workDir, roleDir, manifest, state, etcdConfig)) say(line);
  out.progress.clear();
  return manifest;
}

/**
 * Puts the backup's CA into the judicator's identity dir. The same CA there already: nothing to do. No
 * CA, or another one: the dir is moved aside whole (never deleted), the CA copied in, and the judicator's
 * certificate issued from it (with what its config says; a judicator that never ran gets it at its start).
 */
async function restoreCa(from: string, identityDir: string, fingerprint: string, mainConfig: Record<string, any> | undefined, say: (line: string) => void): Promise<void> {
  const target = identityPaths(identityDir);
  let present: string | undefined;
  try {
    present = caFingerprint(fs.readFileSync(target.caCert));
  } catch {
    present = undefined;
  }
  if (present === fingerprint && fs.existsSync(target.caKey)) {
    say(`  ${identityDir} already holds the cluster CA ${fingerprint}: kept as it is`);
    return;
  }
  if (fs.existsSync(identityDir) && fs.readdirSync(identityDir).length > 0) {
    const aside = `${identityDir}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(identityDir, aside);
    say(`  moved ${identityDir} (${present ? `CA ${present}` : 'no CA'}) aside to ${aside}`);
  }
  prepareIdentityDir(identityDir);
  fs.copyFileSync(path.join(from, IDENTITY_FILES.caCert), target.caCert);
  fs.chmodSync(target.caCert, 0o644);
  fs.copyFileSync(path.join(from, IDENTITY_FILES.caKey), target.caKey);
  fs.chmodSync(target.caKey, 0o600);
  say(`  put the cluster CA ${fingerprint} in ${identityDir}: the cluster keeps its identity`);
  const parsed = judicatorConfigSchema.safeParse(mainConfig);
  if (!parsed.success) return;
  // Issued now, so that a judicator waiting under kv2 maintain starts on it too (the supervisor makes none).
  const { initClusterIdentity } = await import('../pki/init-identity');
  const { writeCrl } = await import('../pki/identity-files');
  const { ca, identity } = await initClusterIdentity(identityDir, { name: parsed.data.name, hosts: parsed.data.pki.hosts, leafLifetimeMs: parsed.data.pki.cert_lifetime * 1000 });
  writeCrl(identityDir, await ca.signCrl([]));
  say(`  issued judicator ${identity.name}'s certificate from it (serial ${identity.serial})`);
}

function nextSteps(workDir: string, roleDir: string, manifest: Manifest, state: WorkDirState, etcdConfig: Record<string, any> | undefined): string[] {
  const mainConfig = readJson(configPath(roleDir, 'main'));
  const name = typeof etcdConfig?.name === 'string' ? etcdConfig.name : '<name>';
  const rpcAddress = mainConfig?.advertise ? `${mainConfig.advertise.address}:${mainConfig.advertise.port}` : '<this judicator>:4000';
  const health = `curl -sk https://127.0.0.1:${mainConfig?.listen?.port ?? 4000}/health`;
  // A standalone system keeps its supervisor's files in standalone/ and is started as such.
  const command = !fs.existsSync(path.join(workDir, 'judicator', 'config', 'boot.json')) && fs.existsSync(path.join(workDir, 'standalone', 'config', 'boot.json')) ? 'standalone' : 'judicator';
  const lines = ['Next:'];
  if (state.underMaintenance) {
    lines.push('  1. exit the maintenance shell: the supervisor starts etcd, which restores the snapshot, then the other modules');
  } else {
    lines.push(
      `  1. start this ${command} with the flags it had before (or systemctl start kv2-${command}):`,
      `       kv2 ${command} --work-dir ${workDir} --etcd-name ${name} ...`,
      '     its etcd module restores the snapshot as a new one-member cluster (its log says "restored etcd from snapshot")',
    );
  }
  lines.push(
    `  2. wait until it answers: ${health}`,
    '  3. start the other judicators joining it, each with its old etcd data moved aside first',
    `     (mv judicator/data/etcd judicator/data/etcd.old-cluster), with --join ${rpcAddress}`,
    '     (and, for a judicator whose identity was lost too, a judicator join token: kv2 join-token create --role judicator)',
    `  4. start the executors and gateways (--join ${rpcAddress}); those that kept their data/pki need no token`,
  );
  if (manifest.store === 'mongodb') {
    lines.push('  The mongodb module loads data/mongodb_init at its start and initiates a new replica set from it once the old one is found gone (--mongodb-remove-after).');
  }
  lines.push('  Tasks that were running when the backup was taken are retried.');
  return lines;
}
