// A fresh work dir for every test of a task (issue 17): the task is compiled once, its work dir as the
// compile step left it is kept aside (the base), and before each test the work dir is made as the base
// again, at the same path, so a test cannot leave files for the next one. Where tasks run as users of
// their own (an executor run as root), the base's files are handed to the executor and made read-only,
// and the test's dir holds hard links to them: a test may delete or replace a file of its dir, never
// change the base's (it owns neither the file nor its mode). Links cost a system call per file, whatever
// its size (a task's data can be hundreds of MiB). Where tasks run as the executor's own user nothing
// would keep a test from changing a linked file, so each file is copied (a reflink where the file system
// has them), and copied again once a test changed it: its inode change time says so (any write, mode or
// link change sets it to now, and no user can set it otherwise).
// The first test's dir is made from nothing; after that the dir a test left is brought back to the base:
// what the test added goes, what it removed or replaced comes back (a linked file is the base's while it
// is the same inode), directories get their modes back. Making and removing directories costs about a
// millisecond each on this machine's ext4, ten times a link: the directories stay.
import fs from 'node:fs';
import path from 'node:path';
import type { TaskIdentity } from './task-user';
import { removeTree, type TaskPaths } from './workdir';

/** One entry of the base, as recorded once (each test's dir is made from these, not by walking the base). */
interface Entry {
  /** Relative to the work dir, `/`-separated. */
  relative: string;
  kind: 'dir' | 'file' | 'link';
  /** Mode bits of a dir as the compile step left it (files keep theirs: linked, or copied with them). */
  mode: number;
  /** A file's inode in the base: a test's link to it is the base's file while it is this inode. */
  ino?: number;
  /** A link's target. */
  target?: string;
}

/** The test's input, written for each test: never taken from the base. */
const INPUT = 'execute.in';
/** The work dir's own mode: the task user's alone. */
const WORK_DIR_MODE = 0o700;

/** The work dir of a task's tests, made as its base again before each test. */
export class TestWorkDirs {
  /** Entries by their relative path. */
  private readonly byPath: Map<string, Entry>;
  /** Each dir's entries ('' is the work dir). */
  private readonly children = new Map<string, Entry[]>();
  /** Where files are copied: each copy's inode and change time (ns) when it was made. */
  private readonly copies = new Map<string, { ino: bigint; ctimeNs: bigint }>();
  private made = false;

  private constructor(
    private readonly paths: TaskPaths,
    private readonly base: string,
    entries: readonly Entry[],
    /** The task user: dirs are theirs, files linked; undefined: the executor's own user, files copied. */
    private readonly owner: TaskIdentity | undefined,
  ) {
    this.byPath = new Map(entries.map((entry) => [entry.relative, entry]));
    for (const entry of entries) {
      const parent = path.posix.dirname(entry.relative);
      const key = parent === '.' ? '' : parent;
      if (!this.children.has(key)) this.children.set(key, []);
      this.children.get(key)!.push(entry);
    }
  }

  /**
   * Keeps the work dir as the compile step left it (moved to `<task dir>/base`, out of a test's reach) and
   * records its entries. Files a task cannot lay out (devices, sockets, FIFOs) are left out.
   */
  static keep(paths: TaskPaths, owner: TaskIdentity | undefined): TestWorkDirs {
    const base = path.join(paths.taskDir, 'base');
    fs.renameSync(paths.workDir, base);
    // Nothing of the base is reachable by the task user: the tests see their links only.
    fs.chmodSync(base, 0o700);
    if (owner) fs.chownSync(base, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    const entries: Entry[] = [];
    const walk = (dir: string, prefix: string) => {
      for (const item of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, item.name);
        const relative = `${prefix}${item.name}`;
        if (relative === INPUT) continue;
        const stat = fs.lstatSync(full);
        if (stat.isDirectory()) {
          entries.push({ relative, kind: 'dir', mode: stat.mode & 0o7777 });
          // The task user must not reach into the base by any path either.
          if (owner) fs.chownSync(full, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
          walk(full, `${relative}/`);
        } else if (stat.isFile()) {
          if (owner) freeze(full, stat);
          entries.push({ relative, kind: 'file', mode: 0, ino: stat.ino });
        } else if (stat.isSymbolicLink()) {
          entries.push({ relative, kind: 'link', mode: 0, target: fs.readlinkSync(full) });
        }
      }
    };
    walk(base, '');
    return new TestWorkDirs(paths, base, entries, owner);
  }

  /** Makes the work dir as the base again, with `input` as its execute.in (owned by the task user). */
  prepare(input: Buffer): void {
    const { workDir, executeInput } = this.paths;
    if (!this.made) {
      removeTree(workDir);
      fs.mkdirSync(workDir, { mode: WORK_DIR_MODE });
      this.own(workDir);
      for (const entry of this.children.get('') ?? []) this.make(entry);
      this.made = true;
    } else {
      this.restore('', workDir);
    }
    // The test's input: a file of the task user's own (the step launcher checks whose its stdin is).
    const fd = fs.openSync(executeInput, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
    try {
      fs.writeSync(fd, input);
      if (this.owner) fs.fchownSync(fd, this.owner.uid, this.owner.gid);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Removes the last test's work dir (the base goes with the task dir). */
  clear(): void {
    removeTree(this.paths.workDir);
  }

  /** Makes `entry` (a dir with everything in it) in the work dir. */
  private make(entry: Entry): void {
    const to = path.join(this.paths.workDir, entry.relative);
    if (entry.kind === 'dir') {
      fs.mkdirSync(to, { mode: entry.mode });
      // mkdir's mode is cut by the umask: set what the compile step had.
      fs.chmodSync(to, entry.mode);
      this.own(to);
      for (const child of this.children.get(entry.relative) ?? []) this.make(child);
    } else if (entry.kind === 'link') {
      fs.symlinkSync(entry.target!, to);
      if (this.owner) fs.lchownSync(to, this.owner.uid, this.owner.gid);
    } else {
      const from = path.join(this.base, entry.relative);
      if (this.owner) fs.linkSync(from, to);
      else {
        fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE);
        const made = fs.lstatSync(to, { bigint: true });
        this.copies.set(entry.relative, { ino: made.ino, ctimeNs: made.ctimeNs });
      }
    }
  }

  /**
   * Brings the dir a test left at `dir` (`relative` in the work dir) back to the base: its mode and owner,
   * then each of its entries; what the base does not have goes.
   */
  private restore(relative: string, dir: string): void {
    const mode = relative === '' ? WORK_DIR_MODE : this.byPath.get(relative)!.mode;
    // Before reading it: the test may have taken its own dir's permissions away.
    const stat = fs.lstatSync(dir);
    if ((stat.mode & 0o7777) !== mode) fs.chmodSync(dir, mode);
    if (this.owner && (stat.uid !== this.owner.uid || stat.gid !== this.owner.gid)) this.own(dir);
    const present = new Set(fs.readdirSync(dir));
    for (const name of present) {
      const inside = relative === '' ? name : `${relative}/${name}`;
      const full = path.join(dir, name);
      const expected = this.byPath.get(inside);
      if (expected && this.unchanged(expected, full)) {
        if (expected.kind === 'dir') this.restore(inside, full);
        continue;
      }
      removeTree(full);
      if (expected) this.make(expected);
    }
    for (const entry of this.children.get(relative) ?? []) {
      if (!present.has(path.posix.basename(entry.relative))) this.make(entry);
    }
  }

  /** Whether `full` is still what the base has at `expected` (a dir is restored inside). */
  private unchanged(expected: Entry, full: string): boolean {
    const stat = fs.lstatSync(full, { bigint: true });
    if (expected.kind === 'dir') return stat.isDirectory();
    if (expected.kind === 'link') return stat.isSymbolicLink() && fs.readlinkSync(full) === expected.target;
    if (!stat.isFile()) return false;
    // A link to the base's file cannot have been changed (it is read-only and not the test's); a copy is
    // the one made for an earlier test as long as nothing changed its inode.
    if (this.owner) return stat.ino === BigInt(expected.ino!);
    const copy = this.copies.get(expected.relative);
    return copy !== undefined && stat.ino === copy.ino && stat.ctimeNs === copy.ctimeNs;
  }

  private own(target: string): void {
    if (this.owner) fs.chownSync(target, this.owner.uid, this.owner.gid);
  }
}

/** A base file: the executor's, readable (and executable, if it was) by all, writable by none. */
function freeze(file: string, stat: fs.Stats): void {
  fs.chownSync(file, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  fs.chmodSync(file, (stat.mode & 0o111) !== 0 ? 0o555 : 0o444);
}
