// The etcd store's key layout under the store prefix (`kv2/store/` by default): one small key per task,
// its large fields under their own keys, and the indexes every query walks instead of the tasks.
//
//   task/<id>                     the task's metadata (JSON, a few hundred bytes): what search reads
//   input/<id>/<token>/<n>        the task's input bytes (one packed value, see packing.ts), in chunks
//   result/<id>/<token>/<n>       the task's result bytes, once done, in chunks
//   feed/pending/<id>             assignable tasks, oldest first (ids are time-ordered): the queue
//   feed/released/<id>            the executor a task was last taken from (cancel, leader requeue)
//   held/<executor>/<id>          tasks an executor holds
//   user/<user>/<id>              tasks of a user, oldest first
//   user-desc/<user>/<inv id>     the same, newest first
//   desc/<inv id>                 all tasks, newest first (`task/` is the oldest-first order)
//   status/<status>/<id>          tasks by status, for counting
//   finished/<ms>/<id>            done tasks by finish time, for retention; value {user, status}
//   executor/<executor>           an executor's record {name, report_ms, vacant, slots, host, started, key, languages, sandbox}
//   callback/<id>                 a finished task's callback waiting to be delivered {url, attempts, due_ms}
//                                 (issue 17's outbox: written by the transaction that ends the task)
//   live/<id>                     a running task's live state (task-events.ts), while its executor holds it
//
// A queue entry (feed/pending/) and a held entry (held/) carry a copy of the task's metadata, written in
// the same transaction as task/<id>: while a task is queued or held, every change to it rewrites or
// deletes that entry too, so one range read of the queue or of an executor's tasks gives what a change
// needs, and a compare on the entry's mod revision guards the change as well as one on task/<id> would.
//
// Large values are cut into chunks of at most 1 MiB written by requests of a few MiB: etcd 3.4.22+ (and
// 3.5 before 3.5.7) refuses to start on a WAL holding an entry of 10 MiB or more (etcd-io/etcd#14114),
// so no request may carry one, whatever --max-request-bytes allows (chunks.ts). The token names
// one upload, so the chunks of two racing uploads of the same task never mix.
//
// A write to task/<id> is a change of that task: watchTaskChanges watches task/ (only while someone
// follows the events), and live/<id> one key per followed task.
//
// Only writes under feed/ and finished/ are the change feed: one watch on the range from feed/ to the end
// of finished/ (no other prefix may sort between them) tells every judicator when a task becomes
// assignable, is taken from its executor, or is done. Newest-first orders have keys of their own
// because etcd sorts a range by reading all of it; an inverted id (each hex digit d -> 15-d) sorts the
// other way round, so both directions are plain ascending ranges with a limit.

/** Bytes an etcd range end needs to cover every key starting with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = bytes.subarray(0, i + 1);
      end[i] = bytes[i]! + 1;
      return Buffer.from(end);
    }
  }
  // A prefix of 0xff bytes only: everything after it.
  return Buffer.from([0]);
}

/** The range end that makes `key` itself the last key of a range (ends are exclusive in etcd). */
export function inclusiveEnd(key: string): Buffer {
  return Buffer.concat([Buffer.from(key), Buffer.from([0])]);
}

/** An id whose ascending order is the reverse of the id's: each hex digit d becomes 15 - d. */
export function invertId(id: string): string {
  let out = '';
  for (const ch of id) out += (15 - parseInt(ch, 16)).toString(16);
  return out;
}

/**
 * An executor's name as one key segment. Names are chosen by users (`--main-name`): a `/` in one must not
 * make `held/a/` cover the tasks of an executor called `a/b`, so the name is percent-encoded.
 */
export function encodeName(name: string): string {
  return encodeURIComponent(name);
}

export function decodeName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** A finish time as a fixed-width key segment (12 hex digits: ms since the epoch until the year 10889). */
export function timeSegment(ms: number): string {
  return Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
}

export function storeKeys(prefix: string) {
  const p = prefix;
  return {
    prefix: p,
    task: (id: string) => `${p}task/${id}`,
    tasks: `${p}task/`,
    /** Every input chunk of a task (whatever the upload), and those of one upload. */
    inputs: (id: string) => `${p}input/${id}/`,
    input: (id: string, token: string) => `${p}input/${id}/${token}/`,
    results: (id: string) => `${p}result/${id}/`,
    result: (id: string, token: string) => `${p}result/${id}/${token}/`,
    feed: `${p}feed/`,
    pending: (id: string) => `${p}feed/pending/${id}`,
    pendings: `${p}feed/pending/`,
    released: (id: string) => `${p}feed/released/${id}`,
    releaseds: `${p}feed/released/`,
    held: (executor: string, id: string) => `${p}held/${encodeName(executor)}/${id}`,
    heldBy: (executor: string) => `${p}held/${encodeName(executor)}/`,
    helds: `${p}held/`,
    user: (user: number, id: string) => `${p}user/${user}/${id}`,
    userTasks: (user: number) => `${p}user/${user}/`,
    userDesc: (user: number, id: string) => `${p}user-desc/${user}/${invertId(id)}`,
    userDescTasks: (user: number) => `${p}user-desc/${user}/`,
    desc: (id: string) => `${p}desc/${invertId(id)}`,
    descs: `${p}desc/`,
    status: (status: number, id: string) => `${p}status/${status}/${id}`,
    statuses: (status: number) => `${p}status/${status}/`,
    finished: (finishMs: number, id: string) => `${p}finished/${timeSegment(finishMs)}/${id}`,
    /** The first finished key at or after `ms`: retention deletes the keys before it. */
    finishedAt: (ms: number) => `${p}finished/${timeSegment(ms)}/`,
    finisheds: `${p}finished/`,
    executor: (name: string) => `${p}executor/${encodeName(name)}`,
    executors: `${p}executor/`,
    callback: (id: string) => `${p}callback/${id}`,
    callbacks: `${p}callback/`,
    live: (id: string) => `${p}live/${id}`,
  };
}

export type StoreKeys = ReturnType<typeof storeKeys>;

/** The key of chunk `n` under a blob prefix (fixed width, so chunks sort in order). */
export function chunkKey(blobPrefix: string, n: number): string {
  return blobPrefix + n.toString().padStart(5, '0');
}

/** The last segment of a key (the task id of every index key). */
export function lastSegment(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** The executor of a `held/<executor>/<id>` key. */
export function heldExecutor(keys: StoreKeys, key: string): string {
  const rest = key.slice(keys.helds.length);
  return decodeName(rest.slice(0, rest.indexOf('/')));
}
