// `kv2 backup --verify <dir>` (and the first step of `kv2 restore`): checks that a backup is whole — the
// manifest is there and well-formed, every file it lists has its size and sha256, the snapshot carries
// etcd's own hash and etcdctl reads it at the manifest's revision, the export parses and its counts are
// the manifest's, a mongodump's documents are all there, and the saved cluster CA's key is its own. Every problem found is reported, not just
// the first, each naming the file and what is wrong with it.
import fs from 'node:fs';
import path from 'node:path';
import { describeError } from '../common/errors';
import { caFingerprint } from '../pki/fingerprint';
import { IDENTITY_FILES } from '../pki/identity-files';
import { MANIFEST_FILE, MONGODUMP_DIR, SNAPSHOT_FILE, readManifest, sha256File, type Manifest } from './backup-manifest';
import { embeddedHashCheck, snapshotStatus } from './etcd-snapshot';
import { countTask, emptyCounts, forEachJsonLine, parseExecutorLine, parseTaskLine, type TaskCounts } from './task-export';

export interface VerifyReport {
  dir: string;
  manifest?: Manifest;
  /** What makes the backup unusable; empty when it is whole. */
  problems: string[];
  /** What was checked and found right, for the report. */
  checked: string[];
}

/** Checks the backup in `dir`; `onStep` hears each check as it starts (for a progress line). */
export async function verifyBackup(dir: string, onStep: (what: string) => void = () => undefined): Promise<VerifyReport> {
  const report: VerifyReport = { dir: path.resolve(dir), problems: [], checked: [] };
  const { problems, checked } = report;
  if (!fs.existsSync(report.dir) || !fs.statSync(report.dir).isDirectory()) {
    problems.push(`${report.dir} is not a directory`);
    return report;
  }
  let manifest: Manifest;
  try {
    manifest = readManifest(report.dir);
  } catch (error) {
    problems.push(describeError(error));
    return report;
  }
  report.manifest = manifest;
  checked.push(`${MANIFEST_FILE}: a kv2 ${manifest.kv2_version} backup of a cluster on the ${manifest.store} store, taken ${manifest.started_at}`);

  // Every file the backup needs must be listed, so that its checksum protects it.
  const required = [SNAPSHOT_FILE, manifest.export.tasks, manifest.export.executors];
  for (const name of required) if (!manifest.files[name]) problems.push(`${MANIFEST_FILE} does not list ${name}, which every backup holds`);
  if (manifest.pki) {
    for (const file of [IDENTITY_FILES.caCert, IDENTITY_FILES.caKey]) {
      if (!manifest.files[`${manifest.pki.dir}/${file}`]) problems.push(`${MANIFEST_FILE} does not list ${manifest.pki.dir}/${file}`);
    }
  }
  if (manifest.mongodump) {
    for (const collection of Object.keys(manifest.mongodump.collections)) {
      const name = `${MONGODUMP_DIR}/${manifest.mongodump.database}/${collection}.bson`;
      if (!manifest.files[name]) problems.push(`${MANIFEST_FILE} does not list ${name}`);
    }
  }

  const intact = new Set<string>();
  for (const [name, expected] of Object.entries(manifest.files)) {
    onStep(`checksum of ${name}`);
    const file = path.join(report.dir, name);
    if (!fs.existsSync(file)) {
      problems.push(`${name} is missing`);
      continue;
    }
    const size = fs.statSync(file).size;
    if (size !== expected.size) {
      problems.push(`${name} has ${size} bytes, the manifest says ${expected.size}: the file was cut short or changed after the backup`);
      continue;
    }
    const sha256 = await sha256File(file);
    if (sha256 !== expected.sha256) {
      problems.push(`${name}: its sha256 is ${sha256}, the manifest says ${expected.sha256}: the file was damaged or changed after the backup`);
      continue;
    }
    intact.add(name);
  }
  if (intact.size === Object.keys(manifest.files).length) checked.push(`${intact.size} files: sizes and sha256 as in the manifest`);

  const snapshotFile = path.join(report.dir, SNAPSHOT_FILE);
  if (fs.existsSync(snapshotFile)) {
    onStep('the etcd snapshot');
    const embedded = embeddedHashCheck(snapshotFile);
    if (embedded === 'mismatch') problems.push(`${SNAPSHOT_FILE}: etcd's own hash at its end does not match its content: the snapshot is damaged`);
    else if (embedded === 'absent') problems.push(`${SNAPSHOT_FILE}: carries no etcd hash at its end (cut short, or not a snapshot etcd streamed)`);
    try {
      const status = snapshotStatus(snapshotFile);
      if (status.revision !== manifest.etcd.revision) {
        problems.push(`${SNAPSHOT_FILE} is at revision ${status.revision}, the manifest says ${manifest.etcd.revision}: it is not this backup's snapshot`);
      } else if (embedded === 'ok') {
        checked.push(`${SNAPSHOT_FILE}: etcd reads it (revision ${status.revision}, ${status.totalKey} keys) and its own hash matches`);
      }
    } catch (error) {
      problems.push(`${SNAPSHOT_FILE}: ${describeError(error)}`);
    }
  }

  await checkExport(report, manifest, onStep);
  if (manifest.mongodump) await checkMongodump(report, manifest.mongodump, onStep);
  if (manifest.pki) await checkCa(report, manifest.pki, onStep);
  return report;
}

/** The saved CA: the certificate the manifest names, and the key that goes with it. */
async function checkCa(report: VerifyReport, pki: NonNullable<Manifest['pki']>, onStep: (what: string) => void): Promise<void> {
  const certFile = path.join(report.dir, pki.dir, IDENTITY_FILES.caCert);
  const keyFile = path.join(report.dir, pki.dir, IDENTITY_FILES.caKey);
  if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) return; // reported as missing already
  onStep('the cluster CA');
  try {
    const certPem = fs.readFileSync(certFile, 'utf8');
    const fingerprint = caFingerprint(certPem);
    if (fingerprint !== pki.ca_fingerprint) {
      report.problems.push(`${pki.dir}/${IDENTITY_FILES.caCert} is CA ${fingerprint}, the manifest says ${pki.ca_fingerprint}`);
      return;
    }
    const { CertificateAuthority } = await import('../pki/certificate-authority');
    await CertificateAuthority.load(certPem, fs.readFileSync(keyFile, 'utf8'));
    report.checked.push(`${pki.dir}/: the cluster CA ${fingerprint} and its key`);
  } catch (error) {
    report.problems.push(`${pki.dir}/: ${describeError(error)}`);
  }
}

async function checkExport(report: VerifyReport, manifest: Manifest, onStep: (what: string) => void): Promise<void> {
  const counts: TaskCounts = emptyCounts();
  const tasksFile = path.join(report.dir, manifest.export.tasks);
  const executorsFile = path.join(report.dir, manifest.export.executors);
  if (!fs.existsSync(tasksFile) || !fs.existsSync(executorsFile)) return; // reported as missing already
  onStep(`the task export ${manifest.export.tasks}`);
  const seen = new Set<string>();
  try {
    await forEachJsonLine(tasksFile, (line, number) => {
      let task;
      try {
        task = parseTaskLine(line);
      } catch (error) {
        throw new Error(`${manifest.export.tasks} line ${number}: ${describeError(error)}`);
      }
      if (seen.has(task.id)) throw new Error(`${manifest.export.tasks} line ${number}: task ${task.id} appears twice`);
      seen.add(task.id);
      countTask(counts, task);
    });
    await forEachJsonLine(executorsFile, (line, number) => {
      try {
        parseExecutorLine(line);
      } catch (error) {
        throw new Error(`${manifest.export.executors} line ${number}: ${describeError(error)}`);
      }
      counts.executors++;
    });
  } catch (error) {
    report.problems.push(describeError(error));
    return;
  }
  const expected = manifest.counts;
  const mismatches: string[] = [];
  if (counts.tasks !== expected.tasks) mismatches.push(`${counts.tasks} tasks (manifest: ${expected.tasks})`);
  if (counts.done !== expected.done) mismatches.push(`${counts.done} done (manifest: ${expected.done})`);
  if (counts.executors !== expected.executors) mismatches.push(`${counts.executors} executors (manifest: ${expected.executors})`);
  for (const status of new Set([...Object.keys(counts.by_status), ...Object.keys(expected.by_status)])) {
    const got = counts.by_status[status] ?? 0;
    const want = expected.by_status[status] ?? 0;
    if (got !== want) mismatches.push(`${got} ${status} (manifest: ${want})`);
  }
  if (mismatches.length) report.problems.push(`the export does not hold what the manifest counts: ${mismatches.join(', ')}`);
  else report.checked.push(`${manifest.export.tasks}: ${counts.tasks} tasks parse, counts as in the manifest; ${manifest.export.executors}: ${counts.executors} executor${counts.executors === 1 ? '' : 's'}`);
}

async function checkMongodump(report: VerifyReport, dump: NonNullable<Manifest['mongodump']>, onStep: (what: string) => void): Promise<void> {
  const { readBsonFile } = await import('../store/mongo/dump');
  const found: string[] = [];
  for (const [collection, expected] of Object.entries(dump.collections)) {
    const name = `${MONGODUMP_DIR}/${dump.database}/${collection}.bson`;
    const file = path.join(report.dir, name);
    if (!fs.existsSync(file)) continue; // reported as missing already
    onStep(name);
    let documents = 0;
    try {
      for await (const _doc of readBsonFile(file)) documents++;
    } catch (error) {
      report.problems.push(`${name}: ${describeError(error)}`);
      continue;
    }
    if (documents !== expected) report.problems.push(`${name} holds ${documents} documents, the manifest says ${expected}`);
    else found.push(`${collection} ${documents}`);
  }
  if (found.length === Object.keys(dump.collections).length) report.checked.push(`${MONGODUMP_DIR}/: documents as in the manifest (${found.join(', ')})`);
}

/** The report as lines for the terminal. */
export function formatVerifyReport(report: VerifyReport): string[] {
  const lines = report.checked.map((line) => `  ok: ${line}`);
  if (report.problems.length === 0) {
    const m = report.manifest!;
    lines.push(`backup OK: ${report.dir} (${m.counts.tasks} tasks, ${m.counts.done} done, etcd revision ${m.etcd.revision})`);
  } else {
    lines.push(`backup DAMAGED: ${report.dir} (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}):`);
    for (const problem of report.problems) lines.push(`  - ${problem}`);
  }
  return lines;
}
