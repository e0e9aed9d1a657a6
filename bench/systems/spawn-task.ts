// Running one task the way a plain worker would: its source (if any) written into a fresh directory,
// `sh -c <command>` spawned there (its input, if any, on stdin), stdout collected, the directory removed. Shared by the floor (in the
// benchmark process) and the BullMQ worker (in its own process).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export async function spawnTask(command: string, source: string | undefined, sourceName: string, tmpRoot = os.tmpdir(), input?: string): Promise<string> {
  const dir = source === undefined ? undefined : await fs.promises.mkdtemp(path.join(tmpRoot, 'task-'));
  try {
    if (dir !== undefined) await fs.promises.writeFile(path.join(dir, sourceName), source!);
    return await new Promise<string>((resolve, reject) => {
      const child = spawn('sh', ['-c', command], { cwd: dir, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'inherit'] });
      if (input !== undefined) child.stdin!.end(input);
      const chunks: Buffer[] = [];
      child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`${command} exited with ${code}`))));
    });
  } finally {
    if (dir !== undefined) await fs.promises.rm(dir, { recursive: true, force: true });
  }
}
