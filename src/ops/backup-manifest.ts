// manifest.json of a kv2 backup: what the backup holds (kv2 version, store kind, etcd revision, counts)
// and the size and sha256 of every file in it, so that `kv2 backup --verify` and `kv2 restore` can tell a
// whole backup from a damaged one. Written last: a directory without a manifest is not a backup.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile } from '../common/json-file';

export const MANIFEST_FILE = 'manifest.json';
export const SNAPSHOT_FILE = 'snapshot.db';
/** mongodump's layout of the MongoDB store, under this folder of the backup. */
export const MONGODUMP_DIR = 'mongodump';
/** The cluster CA (ca.crt, ca.key), under this folder of the backup. */
export const PKI_DIR = 'pki';
export const MANIFEST_FORMAT = 'kv2-backup';
export const MANIFEST_FORMAT_VERSION = 1;

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in hex');
const countSchema = z.number().int().min(0);

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  format_version: z.literal(MANIFEST_FORMAT_VERSION),
  kv2_version: z.string().min(1),
  /** When the backup started and when it was complete (ISO-8601, UTC). */
  started_at: z.string().min(1),
  finished_at: z.string().min(1),
  store: z.enum(['etcd', 'mongodb']),
  source: z.object({
    /** The etcd member the snapshot came from. */
    endpoint: z.string().min(1),
    member: z.string(),
    etcd_version: z.string(),
    /** `--etcd-prefix` of the cluster. */
    prefix: z.string().min(1),
  }),
  etcd: z.object({
    snapshot: z.literal(SNAPSHOT_FILE),
    /** The snapshot's revision (`etcdctl snapshot status`). */
    revision: z.number().int().min(0),
    keys: countSchema,
  }),
  export: z.object({
    tasks: z.string().min(1),
    executors: z.string().min(1),
    /** `snapshot`: read from the snapshot itself (etcd store); `store`: read from the live MongoDB store. */
    read_from: z.enum(['snapshot', 'store']),
    binary_encoding: z.string(),
  }),
  counts: z.object({
    tasks: countSchema,
    done: countSchema,
    by_status: z.record(z.string(), countSchema),
    executors: countSchema,
  }),
  mongodump: z
    .object({
      dir: z.literal(MONGODUMP_DIR),
      database: z.string().min(1),
      /** Documents per collection. */
      collections: z.record(z.string(), countSchema),
    })
    .nullable(),
  /** The cluster CA saved with the backup (absent in backups made before the cluster had one). */
  pki: z.object({ dir: z.literal(PKI_DIR), ca_fingerprint: z.string().regex(/^sha256:[0-9a-f]{64}$/) }).nullish(),
  /** Every file of the backup but the manifest, by path relative to the backup dir ("/" separated). */
  files: z.record(z.string(), z.object({ size: countSchema, sha256: sha256Schema })),
});
export type Manifest = z.infer<typeof manifestSchema>;

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Size and sha256 of the named files of the backup (a folder stands for every file under it), keyed by
 * their path relative to `dir` with "/" separators. Unfinished (.partial) files are left out.
 */
export async function describeFiles(dir: string, names: readonly string[]): Promise<Manifest['files']> {
  const files: Manifest['files'] = {};
  for (const name of [...names].sort()) {
    const full = path.join(dir, name);
    if (!fs.existsSync(full)) continue;
    if (fs.statSync(full).isDirectory()) {
      const children = fs.readdirSync(full).map((child) => `${name}/${child}`);
      Object.assign(files, await describeFiles(dir, children));
    } else if (!name.endsWith('.partial')) {
      files[name] = { size: fs.statSync(full).size, sha256: await sha256File(full) };
    }
  }
  return files;
}

export function writeManifest(dir: string, manifest: Manifest): void {
  const file = path.join(dir, MANIFEST_FILE);
  const partial = `${file}.partial`;
  const fd = fs.openSync(partial, 'w');
  try {
    fs.writeSync(fd, `${JSON.stringify(manifest, null, 2)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(partial, file);
}

/** Reads and checks manifest.json; throws with a message naming what is wrong. */
export function readManifest(dir: string): Manifest {
  const manifest = readJsonFile(path.join(dir, MANIFEST_FILE), manifestSchema, {
    name: MANIFEST_FILE,
    whenMissing: 'this is not a kv2 backup, or its writing did not finish',
  });
  for (const name of Object.keys(manifest.files)) {
    // A manifest names files inside the backup only: never a path that climbs out of it.
    if (name.split('/').some((part) => part === '..' || part === '') || path.isAbsolute(name)) {
      throw new Error(`${MANIFEST_FILE} lists a file outside the backup: ${JSON.stringify(name)}`);
    }
  }
  return manifest;
}
