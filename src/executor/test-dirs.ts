// A fresh work dir for every test of a task (issue 17): the task is compiled once, its work dir as the
// compile step left it is kept aside (the base), and before each test the work dir is made again from it,
// at the same path, so a test cannot leave files for the next one. Where tasks run as users of their own
// (an executor run as root), the base's files are handed to the executor and made read-only, and each
// test's dir holds hard links to them: a test may delete or replace a file of its dir, never change the
// base's (it owns neither the file nor its mode). Links cost a system call per file, whatever its size
// (a task's data can be hundreds of MiB). Where tasks run as the executor's own user nothing would keep a
// test from changing a linked file, so each file is copied (a reflink where the file system has them).
import fs from 'node:fs';
import path from 'node:path';
import type { TaskIdentity } from './task-user';
import { removeTree, type TaskPaths } from './workdir';

/** One entry of the base, as recorded once (each test's dir is made from this list, not by walking). */
interface Entry {
  /** Relative to the work dir, `/`-separated. */
  relative: string;
  kind: 'dir' | 'file' | 'link';
  /** Mode bits of a dir as the compile step left it (files keep theirs: linked, or copied with them). */
  mode: number;
  /** A link's target. */
  target?: string;
}

/** The work dir of a task's tests, made again from its base before each test. */
export class TestWorkDirs {
  private constructor(
    private readonly paths: TaskPaths,
    private readonly base: string,
    private readonly entries: readonly Entry[],
    /** The task user: dirs are theirs, files linked; undefined: the executor's own user, files copied. */
    private readonly owner: TaskIdentity | undefined,
  ) {}

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
        const stat = fs.lstatSync(full);
        if (stat.isDirectory()) {
          entries.push({ relative, kind: 'dir', mode: stat.mode & 0o7777 });
          // The task user must not reach into the base by any path either.
          if (owner) fs.chownSync(full, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
          walk(full, `${relative}/`);
        } else if (stat.isFile()) {
          entries.push({ relative, kind: 'file', mode: stat.mode & 0o7777 });
          if (owner) freeze(full, stat);
        } else if (stat.isSymbolicLink()) {
          entries.push({ relative, kind: 'link', mode: 0, target: fs.readlinkSync(full) });
        }
      }
    };
    walk(base, '');
    return new TestWorkDirs(paths, base, entries, owner);
  }

  /** Makes the work dir afresh from the base, with `input` as its execute.in (owned by the task user). */
  prepare(input: Buffer): void {
    const { workDir, executeInput } = this.paths;
    removeTree(workDir);
    fs.mkdirSync(workDir, { mode: 0o700 });
    this.own(workDir);
    for (const entry of this.entries) {
      const from = path.join(this.base, entry.relative);
      const to = path.join(workDir, entry.relative);
      if (entry.kind === 'dir') {
        fs.mkdirSync(to, { mode: entry.mode });
        // mkdir's mode is cut by the umask: set what the compile step had.
        fs.chmodSync(to, entry.mode);
        this.own(to);
      } else if (entry.kind === 'link') {
        fs.symlinkSync(entry.target!, to);
        if (this.owner) fs.lchownSync(to, this.owner.uid, this.owner.gid);
      } else if (entry.relative !== 'execute.in') {
        if (this.owner) fs.linkSync(from, to);
        else fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE);
      }
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

  private own(target: string): void {
    if (this.owner) fs.chownSync(target, this.owner.uid, this.owner.gid);
  }
}

/** A base file: the executor's, readable (and executable, if it was) by all, writable by none. */
function freeze(file: string, stat: fs.Stats): void {
  fs.chownSync(file, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  fs.chmodSync(file, (stat.mode & 0o111) !== 0 ? 0o555 : 0o444);
}
