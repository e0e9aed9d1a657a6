// `kv2 health`: is every kv2 role running in this work dir well? The image's HEALTHCHECK and an
// operator's quick look: each supervisor alive, each of its modules running (or held by `kv2 maintain`),
// and the gateway's and judicator's own health routes answering. Exit 0 when all is well, else 1.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { CAC } from 'cac';
import { z } from 'zod';
import { UsageError, describeError } from '../common/errors';
import { processStartTime } from '../common/processes';
import { PidFileLock, readPidFile } from '../boot/pid-lock';
import { bootConfigSchema } from '../boot/supervisor';
import type { Run } from './shared';

/** Seconds one health route may take to answer (the HEALTHCHECK's own timeout is above it). */
export const DEFAULT_HEALTH_TIMEOUT_S = 5;

/** The directories a supervisor keeps its boot files in (standalone's modules live in the others). */
const SUPERVISOR_DIRS = ['standalone', 'judicator', 'executor', 'gateway'];

/**
 * The health route of a module, by role and module name, and the config file it listens by. The
 * judicator's RPC port speaks HTTPS only: its route is checked against the cluster CA in its identity dir.
 */
const HEALTH_ROUTES: Record<string, { config: string; route: string; tls?: true }> = {
  'gateway/server': { config: 'server.json', route: '/api/health' },
  'judicator/main': { config: 'main.json', route: '/health', tls: true },
};

const listenSchema = z.object({
  listen: z.object({ address: z.string(), port: z.number().int().min(1).max(65535) }),
  /** The judicator's: where its certificate and the cluster CA's are (relative to its role dir). */
  pki: z.object({ identity_dir: z.string() }).optional(),
});

export function registerHealthCommand(cli: CAC, run: Run): void {
  cli
    .command('health', 'Check the kv2 roles running in --work-dir: supervisors, modules and health routes (exit 0 when all are well)')
    .option('--work-dir <dir>', 'the work dir the roles were started in', { default: '.' })
    .option('--timeout <seconds>', 'seconds each health route may take to answer', { default: DEFAULT_HEALTH_TIMEOUT_S })
    .example('health --work-dir /var/lib/kv2')
    .action((options: { workDir: string; timeout: unknown }) => run(() => health(String(options.workDir), Number(options.timeout))));
}

export async function health(workDir: string, timeoutS: number): Promise<number> {
  if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 600) throw new UsageError('--timeout must be a number of seconds above 0 and at most 600');
  const root = path.resolve(workDir);
  const problems: string[] = [];
  const say = (line: string) => process.stdout.write(`${line}\n`);
  // Roles whose files are here but whose supervisor is not running: a problem only when none runs
  // (a work dir that once ran `kv2 judicator` and now runs `kv2 standalone` keeps both sets of files).
  const stopped: string[] = [];
  let supervisors = 0;

  for (const dir of SUPERVISOR_DIRS) {
    const bootConfigFile = path.join(root, dir, 'config', 'boot.json');
    if (!fs.existsSync(bootConfigFile)) continue;
    const holder = new PidFileLock(path.join(root, dir, 'data', 'boot.pid'), 'kv2 health').holder();
    if (!holder) {
      stopped.push(dir);
      continue;
    }
    supervisors++;
    const parsed = bootConfigSchema.safeParse(readJson(bootConfigFile));
    if (!parsed.success) {
      problems.push(`${dir}: ${bootConfigFile} is not a supervisor config: ${parsed.error.issues[0]?.message}`);
      continue;
    }
    say(`ok: ${dir}: supervisor running (pid ${holder.pid})`);
    for (const module of parsed.data.modules) {
      const role = path.basename(module.role_dir);
      const label = `${role}/${module.name}`;
      const pidFile = path.resolve(module.role_dir, module.pid_file);
      const maintainer = new PidFileLock(pidFile, 'kv2 health').holder();
      if (maintainer && maintainer.what === 'kv2 maintain') {
        say(`ok: ${label}: under maintenance (locked by kv2 maintain, pid ${maintainer.pid})`);
        continue;
      }
      const pid = readPidFile(pidFile);
      if (pid === undefined || processStartTime(pid) === undefined) {
        problems.push(`${label}: not running (the supervisor restarts it; see ${path.join(role, 'log', module.name)})`);
        continue;
      }
      const route = HEALTH_ROUTES[label];
      const answer = route && (await askHealth(module.role_dir, route, timeoutS));
      if (answer && !answer.ok) problems.push(`${label}: running (pid ${pid}) but ${answer.text}`);
      else say(`ok: ${label}: running (pid ${pid})${answer ? `, ${answer.text}` : ''}`);
    }
  }
  if (supervisors === 0) {
    problems.push(
      stopped.length
        ? `no kv2 supervisor runs in ${root} (${stopped.map((dir) => path.join(dir, 'data', 'boot.pid')).join(', ')}: not running)`
        : `no kv2 role runs in ${root} (start one there, or give its --work-dir)`,
    );
  } else for (const dir of stopped) say(`note: ${dir}: not running (files of an earlier run?)`);
  for (const problem of problems) say(`PROBLEM: ${problem}`);
  say(problems.length ? `kv2 health: ${problems.length} problem(s) in ${root}` : `kv2 health: all well in ${root}`);
  return problems.length ? 1 : 0;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** GETs a module's health route on the address its config listens on (HTTPS, trusting the cluster CA, for `tls`). */
async function askHealth(roleDir: string, route: { config: string; route: string; tls?: true }, timeoutS: number): Promise<{ ok: boolean; text: string } | undefined> {
  const config = listenSchema.safeParse(readJson(path.join(roleDir, 'config', route.config)));
  if (!config.success) return undefined;
  const { address, port } = config.data.listen;
  const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '[::1]' : address.includes(':') ? `[${address}]` : address;
  const url = `${route.tls ? 'https' : 'http'}://${host}:${port}${route.route}`;
  try {
    const ca = route.tls ? fs.readFileSync(path.resolve(roleDir, config.data.pki?.identity_dir ?? 'data/pki', 'ca.crt')) : undefined;
    const response = await get(url, ca, timeoutS * 1000);
    if (response.status >= 200 && response.status < 300) return { ok: true, text: `${url} answers ${response.status}` };
    // A gateway with API tokens answers, but tells nothing more without one: it is up.
    if (response.status === 401) return { ok: true, text: `${url} answers 401 (it needs an API token: its judicators were not checked)` };
    return { ok: false, text: `${url} answers ${response.status}: ${response.body.trim().slice(0, 300)}` };
  } catch (error) {
    return { ok: false, text: `${url} does not answer: ${describeError(error)}` };
  }
}

/** One GET: its status and body; over HTTPS the server must prove itself with a certificate of `ca`. */
function get(url: string, ca: Buffer | undefined, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const options = { timeout: timeoutMs, agent: false as const, ...(ca ? { ca } : {}) };
    const request = (url.startsWith('https:') ? https : http).get(url, options, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk.length + body.length <= 4096 ? chunk : ''));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}
