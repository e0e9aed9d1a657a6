// `kv2 maintain <pidfile>...`: the maintenance page's maintain.py. Locks the named pid files so the
// supervisor leaves those modules alone, shows how to stop them, opens a shell, and unlocks when the
// shell exits (a lock left by a maintain that was killed is stale and blocks nobody).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import { exited, signalProcess } from '../common/processes';
import { PidFileLock, readPidFile } from '../boot/pid-lock';
import type { Run } from './shared';

export function registerMaintainCommand(cli: CAC, run: Run): void {
  cli
    .command('maintain [...pidfiles]', 'Lock pid files so the supervisor leaves those modules alone, and open a shell')
    .usage('maintain judicator/data/main.pid [more pid files]')
    .option('--shell <path>', 'shell to open (default: $SHELL, else /bin/sh)')
    .example('maintain judicator/data/main.pid')
    .example('maintain judicator/data/main.pid judicator/data/etcd.pid')
    .action((pidFiles: string[], options: { shell?: string }) => run(() => maintain(pidFiles, options)));
}

export async function maintain(pidFiles: readonly string[], options: { shell?: string } = {}): Promise<number> {
  if (pidFiles.length === 0) throw new UsageError('give at least one pid file, e.g. kv2 maintain judicator/data/main.pid');
  for (const file of pidFiles) {
    if (!file.endsWith('.pid')) throw new UsageError(`${file} is not a pid file (they end in .pid, e.g. judicator/data/main.pid)`);
    const dir = path.dirname(path.resolve(file));
    if (!fs.existsSync(dir)) {
      throw new UsageError(`${dir} does not exist: run kv2 maintain from the directory the role was started in, or give full paths`);
    }
  }
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say('kv2 maintain: locking the pid files so that the supervisor leaves those modules alone,');
  say('then opening a shell for the maintenance. The locks are released when the shell exits.');

  const locks: PidFileLock[] = [];
  const releaseAll = () => {
    for (const lock of locks) lock.release();
  };
  // Whatever happens from here on, the locks go with this process (a SIGKILL leaves them stale, which
  // nobody honours).
  process.on('exit', releaseAll);
  try {
    const pids: number[] = [];
    for (const file of pidFiles) {
      const lock = new PidFileLock(path.resolve(file), 'kv2 maintain');
      if (!lock.tryAcquire()) {
        const holder = lock.holder();
        say(`Waiting for the lock of ${file}${holder ? ` (held by ${holder.what}, pid ${holder.pid})` : ''}...`);
        await lock.acquire();
      }
      locks.push(lock);
      const pid = readPidFile(path.resolve(file));
      if (pid === undefined) say(`Warning: ${file} is missing or holds no pid: that module is not running.`);
      else {
        pids.push(pid);
        say(`Locked ${file}: pid ${pid}.`);
      }
    }
    say('All pid files locked.');
    if (pids.length) say(`Stop the modules first with:  kill -INT ${pids.join(' ')}`);
    say('Exit the shell (or press Ctrl-D) to release the locks; the supervisor then restarts what is down.');
    const status = await runShell(options.shell);
    say('Child shell terminated.');
    return status;
  } finally {
    releaseAll();
    say('All pid files unlocked.');
    say('Maintenance script terminated.');
  }
}

async function runShell(shellOption: string | undefined): Promise<number> {
  const shell = shellOption || process.env.SHELL || '/bin/sh';
  const child = spawn(shell, [], { stdio: 'inherit' });
  // Ctrl-C in the shell reaches us too (same terminal): it is the shell's to handle, not ours.
  const ignore = () => undefined;
  const forward = (signal: NodeJS.Signals) => {
    if (child.pid !== undefined) signalProcess(child.pid, signal);
  };
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  process.on('SIGHUP', forward);
  try {
    const status = await new Promise<number | NodeJS.Signals>((resolve, reject) => {
      child.once('error', (error) => reject(new UsageError(`cannot start the shell ${shell}: ${error.message}`)));
      void exited(child).then(resolve);
    });
    return typeof status === 'number' ? status : 1;
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGTERM', forward);
    process.off('SIGHUP', forward);
  }
}
