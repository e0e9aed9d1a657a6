// `kv2 backup <dir>`: an online, consistent backup of a running cluster (SPEC §9). One etcd member's
// snapshot is streamed into snapshot.db after a linearizable read on that member (so it holds every write
// acknowledged before the backup started); the task export (tasks.jsonl, executors.jsonl, see
// task-export.ts) is then read through the TaskStore interface from a private etcd restored from that very
// snapshot, so snapshot and export hold the same tasks at the same revision and the snapshot is proven
// restorable. For a MongoDB store the tasks live in the replica set: the export is read through the store
// and the collections are dumped in mongodump's layout; each task is then as one atomic write left it.
// manifest.json (backup-manifest.ts) is written last. The backup also holds the cluster CA (pki/ca.crt and
// pki/ca.key), so that `kv2 restore` brings the cluster back with its identity (every node's certificate
// and every join token stay good): the backup is then as secret as a judicator's disk, and is written
// for its owner only (0700 directory, 0600 files). It runs on a judicator's machine: etcd admits only
// judicators' certificates, and the backup presents that judicator's.
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { Etcd3 } from 'etcd3';
import { VERSION } from '../common/version';
import { UnavailableError, UsageError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { isoTime } from '../common/time';
import { configPath, readConfigFile } from '../boot/config-files';
import { createEtcdClient, type EtcdTlsFiles } from '../etcd/client';
import { IDENTITY_DIR } from '../boot/join-flags';
import { caFingerprint } from '../pki/fingerprint';
import { identityPaths, readNodeFiles } from '../pki/identity-files';
import { etcdConfigSchema, localClientUrl } from '../etcd/config';
import { DEFAULT_PREFIX, clusterKeys } from '../etcd/keys';
import { mongodbConfigSchema, replicaSetUri } from '../mongodb/config';
import { openTaskStore } from '../store/open-store';
import type { StoreKind, TaskStore } from '../store/task-store';
import {
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  MONGODUMP_DIR,
  PKI_DIR,
  SNAPSHOT_FILE,
  describeFiles,
  writeManifest,
  type Manifest,
} from './backup-manifest';
import { saveSnapshot, snapshotStatus } from './etcd-snapshot';
import { formatBytes, type Progress } from './progress';
import { withSnapshotEtcd } from '../etcd/scratch-etcd';
import { BINARY_ENCODING, EXECUTORS_FILE, TASKS_FILE, exportStore, type TaskCounts } from './task-export';

/** Milliseconds one etcd call of the backup may take (not the snapshot stream, which has no deadline). */
export const BACKUP_ETCD_CALL_TIMEOUT_MS = 10_000;
/** The scratch etcd's data dir while the export is read (inside the backup dir, removed afterwards). */
const SCRATCH_DIR = '.scratch-etcd';
/** What `--force` replaces in a directory that holds an older backup. */
const BACKUP_ENTRIES = [MANIFEST_FILE, SNAPSHOT_FILE, TASKS_FILE, EXECUTORS_FILE, MONGODUMP_DIR, PKI_DIR, SCRATCH_DIR];

export interface BackupOptions {
  dir: string;
  /** `--etcd-endpoints`: client URLs of the cluster; by default the judicator of `workDir`. */
  endpoints?: string[];
  /** `--work-dir` of a judicator on this machine (its config/etcd.json gives the client port). */
  workDir: string;
  /** `--etcd-prefix`; by default the judicator's, else kv2/. */
  prefix?: string;
  /** `--mongodb-uri`: the replica set of a MongoDB store; by default from the judicator's config or etcd. */
  mongodbUri?: string;
  force: boolean;
}

export interface CommandOutput {
  say: (line: string) => void;
  progress: Progress;
}

/** Logs of the stores and clients the command opens: warnings and worse, on stderr (stdout is the report). */
export function commandLogger(component: string): Logger {
  return pino({ level: process.env.KV2_LOG_LEVEL ?? 'warn', base: { component } }, pino.destination({ fd: 2, sync: true }));
}

interface ClusterSource {
  endpoints: string[];
  prefix: string;
  mongodbUri?: string;
  /** Where they came from, for messages. */
  from: string;
  /** The judicator's certificate (etcd admits judicators only). */
  tls: EtcdTlsFiles;
  /** The judicator's identity directory (ca.crt, ca.key). */
  identityDir: string;
}

/** The identity of the judicator in `workDir`: a judicator's certificate, and the CA key beside it. */
export function judicatorIdentity(workDir: string, what: string): { tls: EtcdTlsFiles; identityDir: string } {
  const identityDir = path.resolve(workDir, 'judicator', IDENTITY_DIR);
  const files = readNodeFiles(identityDir);
  if (!files || files.identity.role !== 'judicator' || !fs.existsSync(identityPaths(identityDir).caKey)) {
    throw new UsageError(
      `${what} runs on a judicator's machine: it reaches etcd with the judicator's certificate (etcd admits judicators only) and saves the cluster CA; ` +
        `no judicator identity in ${identityDir} (give --work-dir, the judicator's work dir)`,
    );
  }
  return { tls: files, identityDir };
}

/** The cluster to back up: the flags, else the judicator in `workDir`. */
export async function locateCluster(options: Pick<BackupOptions, 'endpoints' | 'workDir' | 'prefix' | 'mongodbUri'>): Promise<ClusterSource> {
  const roleDir = path.resolve(options.workDir, 'judicator');
  const etcdConfigFile = configPath(roleDir, 'etcd');
  const haveConfig = fs.existsSync(etcdConfigFile);
  const etcdConfig = haveConfig ? readConfigFile(etcdConfigFile, etcdConfigSchema) : undefined;
  let mongodbUri = options.mongodbUri;
  const mongodbConfigFile = configPath(roleDir, 'mongodb');
  if (!mongodbUri && fs.existsSync(mongodbConfigFile)) mongodbUri = replicaSetUri(readConfigFile(mongodbConfigFile, mongodbConfigSchema));
  const prefix = options.prefix ?? etcdConfig?.prefix ?? DEFAULT_PREFIX;
  const identity = judicatorIdentity(options.workDir, 'kv2 backup');
  if (options.endpoints?.length) return { endpoints: options.endpoints, prefix, mongodbUri, from: '--etcd-endpoints', ...identity };
  if (!etcdConfig) {
    throw new UsageError(
      `no cluster to back up: give --etcd-endpoints https://<judicator>:2001, or run kv2 backup where a judicator was started ` +
        `(--work-dir; ${etcdConfigFile} does not exist)`,
    );
  }
  return { endpoints: [localClientUrl(etcdConfig)], prefix, mongodbUri, from: etcdConfigFile, ...identity };
}

interface Member {
  client: Etcd3;
  endpoint: string;
  name: string;
  version: string;
  /** cluster/store as this member read it (null: not recorded yet). */
  recordedStore: string | null;
}

/**
 * The first of `endpoints` that answers a linearizable read, with a client of that member alone (the
 * snapshot is its data). That read makes the member apply every write acknowledged before it, so its
 * snapshot holds them all; a member cut off from its quorum (or a learner) fails it and is passed over.
 */
async function pickMember(endpoints: readonly string[], prefix: string, tls: EtcdTlsFiles): Promise<Member> {
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    const client = createEtcdClient([endpoint], { tls: { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem }, faultHandling: false, callTimeoutMs: BACKUP_ETCD_CALL_TIMEOUT_MS });
    try {
      const status = await client.maintenance.status();
      const { members } = await client.cluster.memberList({});
      const name = members.find((m) => m.ID === status.header.member_id)?.name ?? '';
      const recordedStore = await client.get(clusterKeys(prefix).clusterStore).string();
      return { client, endpoint, name, version: status.version, recordedStore };
    } catch (error) {
      client.close();
      failures.push(`${endpoint}: ${describeError(error)}`);
    }
  }
  throw new UnavailableError(`no etcd member answered, so nothing was backed up (${failures.join('; ')}); is the judicator running?`);
}

/** Refuses a target that is a file, or a directory that is not empty without --force; changes nothing. */
function checkTarget(dir: string, force: boolean): void {
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new UsageError(`${dir} is a file, not a directory: give a new or empty directory for the backup`);
  const entries = fs.readdirSync(dir);
  if (entries.length > 0 && !force) {
    throw new UsageError(
      `${dir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}): kv2 backup writes into a new or empty ` +
        'directory; give --force to replace the backup files in it',
    );
  }
}

/** Creates the target (its owner's only: it will hold the CA key), or clears the backup files of an older backup in it (--force). */
function prepareTarget(dir: string): void {
  if (fs.existsSync(dir)) {
    // The old manifest goes first: a backup interrupted from here on has none, so it never passes for whole.
    for (const entry of BACKUP_ENTRIES) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    for (const entry of fs.readdirSync(dir)) if (entry.endsWith('.partial')) fs.rmSync(path.join(dir, entry), { force: true });
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/** Copies the cluster CA into <dir>/pki (0700, files 0600); returns its fingerprint. */
function saveCa(identityDir: string, dir: string): string {
  const from = identityPaths(identityDir);
  const to = identityPaths(path.join(dir, PKI_DIR));
  fs.mkdirSync(to.dir, { recursive: true, mode: 0o700 });
  for (const [source, target] of [[from.caCert, to.caCert], [from.caKey, to.caKey]] as const) {
    fs.copyFileSync(source, target);
    fs.chmodSync(target, 0o600);
  }
  return caFingerprint(fs.readFileSync(to.caCert));
}

export function describeCounts(counts: Pick<TaskCounts, 'tasks' | 'by_status'>): string {
  const parts = Object.entries(counts.by_status).map(([status, n]) => `${status} ${n}`);
  return `${counts.tasks} task${counts.tasks === 1 ? '' : 's'}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/** Writes a backup into `options.dir`; returns its manifest. */
export async function runBackup(options: BackupOptions, out: CommandOutput): Promise<Manifest> {
  const started = Date.now();
  const dir = path.resolve(options.dir);
  const source = await locateCluster(options);
  checkTarget(dir, options.force);
  const say = (line: string) => {
    out.progress.clear();
    out.say(line);
  };
  say(`kv2 backup: backing up the cluster at ${source.endpoints.join(', ')} (prefix ${source.prefix}) into ${dir}`);

  const member = await pickMember(source.endpoints, source.prefix, source.tls);
  const store: StoreKind = member.recordedStore === 'mongodb' ? 'mongodb' : 'etcd';
  let snapshot;
  try {
    prepareTarget(dir);
    say(`  etcd member ${member.name || '(unnamed)'} at ${member.endpoint} (etcd ${member.version})`);
    say(`  task store: ${store}${member.recordedStore === null ? ' (the cluster has not recorded one yet: no task was ever stored)' : ''}`);
    snapshot = await saveSnapshot(member.client, path.join(dir, SNAPSHOT_FILE), (received, total) => out.progress.update('snapshot', received, total, 'bytes'));
  } finally {
    member.client.close();
  }
  fs.chmodSync(path.join(dir, SNAPSHOT_FILE), 0o600);
  const status = snapshotStatus(path.join(dir, SNAPSHOT_FILE));
  say(`  ${SNAPSHOT_FILE}: ${formatBytes(snapshot.bytes)}, revision ${status.revision}, ${status.totalKey} keys`);
  const fingerprint = saveCa(source.identityDir, dir);
  say(`  ${PKI_DIR}/: the cluster CA (${fingerprint}), with its private key: this backup is a secret now, keep it as safe as a judicator's disk (mode 0600)`);

  const logger = commandLogger('backup');
  const exportFiles = { tasks: path.join(dir, TASKS_FILE), executors: path.join(dir, EXECUTORS_FILE) };
  const onExport = (done: number, total: number) => out.progress.update('tasks', done, total);
  let counts: TaskCounts;
  let mongodump: Manifest['mongodump'] = null;
  if (store === 'etcd') {
    counts = await withSnapshotEtcd(path.join(dir, SNAPSHOT_FILE), path.join(dir, SCRATCH_DIR), async (client) => {
      const taskStore = await openTaskStore({ kind: 'etcd', client, prefix: source.prefix, maxTaskSize: Number.MAX_SAFE_INTEGER, logger });
      return exportAndClose(taskStore, exportFiles, onExport);
    });
    say(`  ${TASKS_FILE}: ${describeCounts(counts)}, read from the snapshot; ${EXECUTORS_FILE}: ${counts.executors} executor${counts.executors === 1 ? '' : 's'}`);
  } else {
    const uri = source.mongodbUri ?? (await mongodbUriFromEtcd(source));
    say(`  MongoDB replica set: ${uri}`);
    const dumped = await dumpMongodb(uri, path.join(dir, MONGODUMP_DIR));
    mongodump = { dir: MONGODUMP_DIR, database: dumped.database, collections: dumped.collections };
    say(`  ${MONGODUMP_DIR}/: ${Object.entries(dumped.collections).map(([c, n]) => `${c} ${n} documents`).join(', ')} (mongodump's layout)`);
    const taskStore = await openTaskStore({ kind: 'mongodb', uri, maxTaskSize: Number.MAX_SAFE_INTEGER, logger });
    counts = await exportAndClose(taskStore, exportFiles, onExport);
    say(`  ${TASKS_FILE}: ${describeCounts(counts)}, read from the store; ${EXECUTORS_FILE}: ${counts.executors} executor${counts.executors === 1 ? '' : 's'}`);
  }

  for (const file of [TASKS_FILE, EXECUTORS_FILE]) if (fs.existsSync(path.join(dir, file))) fs.chmodSync(path.join(dir, file), 0o600);
  const files = await describeFiles(dir, [SNAPSHOT_FILE, TASKS_FILE, EXECUTORS_FILE, PKI_DIR, ...(mongodump ? [MONGODUMP_DIR] : [])]);
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    format_version: MANIFEST_FORMAT_VERSION,
    kv2_version: VERSION,
    started_at: isoTime(started),
    finished_at: isoTime(),
    store,
    source: { endpoint: member.endpoint, member: member.name, etcd_version: member.version, prefix: source.prefix },
    etcd: { snapshot: SNAPSHOT_FILE, revision: status.revision, keys: status.totalKey },
    export: { tasks: TASKS_FILE, executors: EXECUTORS_FILE, read_from: store === 'etcd' ? 'snapshot' : 'store', binary_encoding: BINARY_ENCODING },
    counts,
    mongodump,
    pki: { dir: PKI_DIR, ca_fingerprint: fingerprint },
    files,
  };
  writeManifest(dir, manifest);
  const total = Object.values(files).reduce((sum, f) => sum + f.size, 0);
  say(`  ${MANIFEST_FILE}: ${Object.keys(files).length} files, ${formatBytes(total)}, with the sha256 of each`);
  say(`backup complete in ${((Date.now() - started) / 1000).toFixed(1)} s: ${dir}`);
  say(`check it with: kv2 backup --verify ${dir}`);
  out.progress.clear();
  return manifest;
}

async function exportAndClose(store: TaskStore, files: { tasks: string; executors: string }, onProgress: (done: number, total: number) => void): Promise<TaskCounts> {
  try {
    return await exportStore(store, files, onProgress);
  } finally {
    await store.close();
  }
}

/** The replica set's members as the judicators registered them in etcd (no config file at hand). */
async function mongodbUriFromEtcd(source: ClusterSource): Promise<string> {
  const client = createEtcdClient(source.endpoints, { tls: { ca: source.tls.caPem, cert: source.tls.certPem, key: source.tls.keyPem }, callTimeoutMs: BACKUP_ETCD_CALL_TIMEOUT_MS });
  try {
    const hosts = Object.values(await client.getAll().prefix(clusterKeys(source.prefix).mongodbRegistrations).strings());
    if (hosts.length === 0) {
      throw new UnavailableError('the cluster keeps its tasks in MongoDB, and no mongod is registered in etcd: give --mongodb-uri mongodb://<host:port>/?replicaSet=<name>');
    }
    return `mongodb://${hosts.sort().join(',')}/`;
  } finally {
    client.close();
  }
}

async function dumpMongodb(uri: string, dumpDir: string): Promise<{ database: string; collections: Record<string, number> }> {
  // Loaded only here: a backup of an etcd store never loads the MongoDB driver.
  const [{ MongoClient }, { dumpCollections }, { DATABASE }] = await Promise.all([import('mongodb'), import('../store/mongo/dump'), import('../store/mongo/documents')]);
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: BACKUP_ETCD_CALL_TIMEOUT_MS });
  try {
    const dumped = await dumpCollections(client.db(DATABASE), dumpDir);
    return { database: DATABASE, collections: Object.fromEntries(dumped.map((d) => [d.collection, d.documents])) };
  } finally {
    await client.close();
  }
}
