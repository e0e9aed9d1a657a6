// The docker CLI as kv2 scale/swarm use it: queries whose output is read, and changes whose output the
// operator watches (docker service create/scale show convergence progress), each with a timeout and an
// error that says which docker command failed and what docker said.
import { spawn } from 'node:child_process';
import { UnavailableError } from '../common/errors';
import { stopChild } from '../common/processes';

export interface DockerResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** What scale and swarm need from docker; the dry run and the tests put their own behind it. */
export interface Docker {
  /** Runs a read-only command and returns its output, whatever its exit status. */
  query(args: readonly string[]): Promise<DockerResult>;
  /** Runs a command that changes the swarm (with `input` on its stdin); a non-zero exit is a DockerCommandError. */
  change(args: readonly string[], input?: string): Promise<void>;
}

/** A docker command that ran and failed: the message carries docker's own words. */
export class DockerCommandError extends UnavailableError {}

/** How the command is shown to the operator: copy-pasteable into a POSIX shell. */
export function formatCommand(command: string, args: readonly string[]): string {
  return [command, ...args].map(shellQuote).join(' ');
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const STDERR_KEPT = 4_000;
/** A docker command past --docker-timeout gets SIGTERM, then this long before SIGKILL. */
const TIMED_OUT_KILL_GRACE_MS = 5_000;

export class DockerCli implements Docker {
  /**
   * @param command the docker executable (looked up on PATH)
   * @param timeoutMs how long one docker command may take: `service create` and `service scale` wait
   *   for the tasks to run, and an image that cannot be pulled keeps them waiting forever
   */
  constructor(
    private readonly timeoutMs: number,
    private readonly command = 'docker',
  ) {}

  query(args: readonly string[]): Promise<DockerResult> {
    return this.exec(args, false);
  }

  async change(args: readonly string[], input?: string): Promise<void> {
    const result = await this.exec(args, true, input);
    if (result.status !== 0) {
      const said = lastLines(result.stderr) || lastLines(result.stdout) || 'no message';
      throw new DockerCommandError(`${formatCommand(this.command, args)} failed (exit ${result.status}): ${said}`);
    }
  }

  /** `show`: the operator sees docker's output as it comes (progress of create and scale); `input` goes to its stdin (a secret: never on its command line). */
  private exec(args: readonly string[], show: boolean, input?: string): Promise<DockerResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      child.stdin.on('error', () => undefined); // docker may exit without reading it; its exit status says why
      child.stdin.end(input ?? '');
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        if (show) process.stdout.write(chunk);
        else stdout += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        if (show) process.stderr.write(chunk);
        stderr = (stderr + chunk.toString()).slice(-STDERR_KEPT);
      });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        void stopChild(child, { signal: 'SIGTERM', graceMs: TIMED_OUT_KILL_GRACE_MS, group: false });
      }, this.timeoutMs);
      child.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (error.code === 'ENOENT') {
          reject(
            new UnavailableError(
              `the ${this.command} command is not installed or not on PATH: kv2 scale and kv2 swarm drive docker swarm ` +
                'through it; install Docker and run this on a swarm manager (or set DOCKER_HOST to reach one)',
            ),
          );
        } else reject(new UnavailableError(`cannot run ${this.command}: ${error.message}`));
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (timedOut) {
          reject(
            new DockerCommandError(
              `${formatCommand(this.command, args)} did not finish within ${this.timeoutMs / 1000} s (--docker-timeout); ` +
                'docker service ps <service> --no-trunc shows why its tasks do not start',
            ),
          );
          return;
        }
        resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr });
      });
    });
  }
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' / ').trim();
}
