// The etcd member's data directory: whether it holds a member, restoring it from data/etcd_init (a
// snapshot file or a copied data dir), the one-shot "force a new cluster" of the disaster-recovery
// procedure, wiping it when the member was removed, and the list of peers remembered for rejoining.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../common/logging';

export function hasMemberData(dataDir: string): boolean {
  return fs.existsSync(path.join(dataDir, 'member', 'wal'));
}

export function isEmptyDir(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length === 0;
  } catch {
    return true;
  }
}

/** Empties a directory, keeping the directory itself (the operator may have it open in a shell). */
export function emptyDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
}

/** Moves a data dir aside (never deletes data an operator might still want); returns where it went. */
export function moveAside(dataDir: string, why: string): string | undefined {
  if (!fs.existsSync(dataDir) || isEmptyDir(dataDir)) return undefined;
  const aside = `${dataDir}.${why}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  fs.renameSync(dataDir, aside);
  return aside;
}

export interface RestoreParams {
  initDir: string;
  dataDir: string;
  name: string;
  peerUrl: string;
  /** Resolves etcdctl; only called when there is a snapshot to restore. */
  etcdctl: () => string | undefined;
}

/**
 * Restores the member from `initDir` (data/etcd_init) when it is not empty. A snapshot file (`*.db`) is
 * restored with `etcdctl snapshot restore` as a new one-member cluster; a copied data dir (`member/`)
 * replaces the data dir and must then be started with --force-new-cluster. The init dir is emptied
 * afterwards, so a later restart does not restore again. Returns what was done.
 */
export function restoreFromInitDir(params: RestoreParams, logger: Logger): 'none' | 'snapshot' | 'data-dir' {
  const { initDir, dataDir } = params;
  if (isEmptyDir(initDir)) return 'none';
  const entries = fs.readdirSync(initDir);
  const snapshot = entries.find((e) => e.endsWith('.db') && fs.statSync(path.join(initDir, e)).isFile());
  const memberDir = entries.includes('member') ? initDir : entries.find((e) => fs.existsSync(path.join(initDir, e, 'member')));
  if (snapshot) {
    const etcdctl = params.etcdctl();
    if (!etcdctl) throw new Error('restoring an etcd snapshot needs etcdctl, and none was found (set KV2_ETCDCTL_BINARY)');
    const staging = `${dataDir}.restoring`;
    fs.rmSync(staging, { recursive: true, force: true });
    const result = spawnSync(
      etcdctl,
      [
        'snapshot', 'restore', path.join(initDir, snapshot),
        '--name', params.name,
        '--data-dir', staging,
        '--initial-cluster', `${params.name}=${params.peerUrl}`,
        '--initial-advertise-peer-urls', params.peerUrl,
        '--initial-cluster-token', 'kv2',
        // A snapshot taken with `etcdctl snapshot save` carries its hash; one copied from a data dir does not.
        ...(fs.existsSync(path.join(initDir, 'NO_HASH')) ? ['--skip-hash-check'] : []),
      ],
      { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' },
    );
    if (result.status !== 0) {
      throw new Error(`etcdctl snapshot restore of ${snapshot} failed: ${(result.stderr || result.stdout || '').trim()}`);
    }
    const aside = moveAside(dataDir, 'before-restore');
    fs.renameSync(staging, dataDir);
    logger.warn({ snapshot: path.join(initDir, snapshot), previous: aside }, `restored etcd from snapshot ${snapshot} as a new one-member cluster`);
    emptyDir(initDir);
    return 'snapshot';
  }
  if (memberDir) {
    const source = memberDir === initDir ? initDir : path.join(initDir, memberDir);
    const aside = moveAside(dataDir, 'before-restore');
    fs.cpSync(source, dataDir, { recursive: true });
    logger.warn({ from: source, previous: aside }, 'restored etcd from a copied data dir; it starts as a new one-member cluster');
    emptyDir(initDir);
    return 'data-dir';
  }
  throw new Error(
    `${initDir} is not empty but holds neither a snapshot (*.db) nor an etcd data dir (member/); ` +
      'put a backup there or empty it',
  );
}

/**
 * The disaster-recovery procedure sets config/etcd.json's cluster to {"type":"init"}: the member must then
 * start once with --force-new-cluster. A marker keyed by that file's content and mtime makes sure a later
 * restart with the same edit does not force again (which could split a cluster others joined since).
 */
export class ForceNewClusterMarker {
  constructor(
    private readonly markerFile: string,
    private readonly configFile: string,
  ) {}

  private stamp(): string {
    const content = fs.readFileSync(this.configFile);
    const mtime = fs.statSync(this.configFile).mtimeMs;
    return `${mtime}:${createHash('sha256').update(content).digest('hex')}`;
  }

  alreadyForced(): boolean {
    try {
      return fs.readFileSync(this.markerFile, 'utf8') === this.stamp();
    } catch {
      return false;
    }
  }

  record(): void {
    fs.writeFileSync(this.markerFile, this.stamp());
  }
}

/** The cluster this member last belonged to, kept so a member that lost its data can find it again. */
export interface KnownPeers {
  clusterId: string;
  members: { name: string; peerUrls: string[]; clientUrls: string[] }[];
  savedAt: string;
}

export function readKnownPeers(file: string): KnownPeers | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as KnownPeers;
  } catch {
    return undefined;
  }
}

export function writeKnownPeers(file: string, peers: KnownPeers): void {
  const temp = `${file}.tmp`;
  fs.writeFileSync(temp, JSON.stringify(peers, null, 2));
  fs.renameSync(temp, file);
}
