// A whole kv2 system for tests and the chaos run: judicators, executors and gateways of the built kv2 on
// loopback, each in its own work dir, plus a small HTTP client of the gateway API. Executors and gateways
// join through the judicators' RPC with the first judicator's join token file, as on one machine.
import { freePort } from './ports';
import { copyToken, startJudicators, type ClusterNode } from './cluster';
import { killLeftovers, startNode, type Kv2Node } from './kv2';
import { makeTempDir } from './temp';
import { waitFor } from './wait';

type Hooks = { after: (fn: () => unknown) => void };

export interface ExecutorNode {
  name: string;
  dir: string;
  args: string[];
  node: Kv2Node;
}

export interface GatewayNode {
  dir: string;
  port: number;
  url: string;
  args: string[];
  node: Kv2Node;
}

export interface System {
  judicators: ClusterNode[];
  executors: ExecutorNode[];
  gateways: GatewayNode[];
}

export const FAST_NODE_FLAGS = ['--boot-check-interval', '0.5', '--boot-grace-period', '15'];

/**
 * Where a node whose work dir is `dir` joins the cluster: the judicators' RPC addresses, and (when `dir`
 * is given) a copy of the first judicator's join token in `dir`, as an operator hands one to a machine.
 */
export function joinFlags(judicators: ClusterNode | readonly ClusterNode[], dir?: string): string[] {
  const list = Array.isArray(judicators) ? judicators : [judicators as ClusterNode];
  return ['--join', list.map((j) => j.rpcAddress).join(','), ...(dir ? ['--join-token-file', copyToken(list[0]!, dir)] : [])];
}

/** An executor's flags; with `dir`, it joins with a copy of the first judicator's token there (none: the test passes one another way). */
export function executorArgs(name: string, judicators: ClusterNode | readonly ClusterNode[], extra: string[] = [], dir?: string): string[] {
  return ['executor', '--main-name', name, ...joinFlags(judicators, dir), ...FAST_NODE_FLAGS, ...extra];
}

export function startExecutor(hooks: Hooks, name: string, judicators: ClusterNode | readonly ClusterNode[], extra: string[] = [], dir?: string): ExecutorNode {
  const workDir = dir ?? makeTempDir(hooks, `kv2-${name}-`);
  const args = executorArgs(name, judicators, extra, workDir);
  return { name, dir: workDir, args, node: startNode(hooks, workDir, args) };
}

export async function startGateway(hooks: Hooks, judicators: ClusterNode | readonly ClusterNode[], extra: string[] = []): Promise<GatewayNode> {
  const dir = makeTempDir(hooks, 'kv2-gw-');
  const port = await freePort();
  const args = ['gateway', '--server-port', String(port), '--server-host', '127.0.0.1', ...joinFlags(judicators, dir), ...FAST_NODE_FLAGS, ...extra];
  const node = startNode(hooks, dir, args);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (node.exited) throw new Error(`gateway exited:\n${node.tail()}`);
      const response = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2_000) });
      return response.ok;
    },
    { what: `the gateway on port ${port} to be healthy`, timeoutMs: 60_000 },
  );
  return { dir, port, url, args, node };
}

export async function startSystem(
  hooks: Hooks,
  options: { judicators?: number; executors?: number; slots?: number; judicatorFlags?: string[]; executorFlags?: string[]; gatewayFlags?: string[] } = {},
): Promise<System> {
  const judicators = await startJudicators(hooks, options.judicators ?? 1, options.judicatorFlags ?? []);
  const executors = Array.from({ length: options.executors ?? 1 }, (_, i) =>
    startExecutor(hooks, `e${i + 1}`, judicators, ['--main-task-vacant', String(options.slots ?? 3), ...(options.executorFlags ?? [])]),
  );
  const gateways = [await startGateway(hooks, judicators, options.gatewayFlags ?? [])];
  // A test that spreads tasks over executors needs them all polling before it submits: one started
  // late on a loaded machine would find every task taken by the others.
  await waitForExecutors(gateways[0]!.url, executors);
  return { judicators, executors, gateways };
}

/** Waits until the gateway lists every executor as alive (reported within the executor TTL). */
export async function waitForExecutors(gatewayUrl: string, executors: ExecutorNode[]): Promise<void> {
  await waitFor(
    async () => {
      for (const executor of executors) if (executor.node.exited) throw new Error(`executor ${executor.name} exited:\n${executor.node.tail()}`);
      const response = await fetch(`${gatewayUrl}/api/executors`, { signal: AbortSignal.timeout(2_000) });
      if (!response.ok) return false;
      const { executors: listed } = (await response.json()) as { executors: { id: string; alive?: boolean }[] };
      const alive = new Set(listed.filter((e) => e.alive !== false).map((e) => e.id));
      return executors.every((e) => alive.has(e.name));
    },
    { what: `executors ${executors.map((e) => e.name).join(', ')} to register`, timeoutMs: 60_000 },
  );
}

/** Kills every process of a node at once (a lost machine) and waits for its supervisor to be reaped. */
export async function killNode(node: { dir: string; node: Kv2Node }): Promise<void> {
  killLeftovers(node.dir);
  await node.node.waitExit();
}

/** The gateway's HTTP API, as a client would use it. */
export class GatewayClient {
  constructor(readonly url: string) {}

  async submit(fields: Record<string, string | number>): Promise<{ result: number; id: string | null; message?: string }> {
    const body = new URLSearchParams();
    const defaults = { user: 0, compile_command: '', compile_timeout: 0, execute_input: '', execute_command: '', execute_timeout: 0, execute_standard: '' };
    for (const [key, value] of Object.entries({ ...defaults, ...fields })) body.set(key, String(value));
    const response = await fetch(`${this.url}/api/task`, { method: 'POST', body, signal: AbortSignal.timeout(30_000) });
    return (await response.json()) as { result: number; id: string | null };
  }

  async get(id: string, noTruncate = true): Promise<{ result: number; task: GatewayTask | null }> {
    const response = await fetch(`${this.url}/api/task?id=${id}${noTruncate ? '&no_truncate=1' : ''}`, { signal: AbortSignal.timeout(30_000) });
    return (await response.json()) as { result: number; task: GatewayTask | null };
  }

  async cancel(id: string): Promise<{ result: number }> {
    const response = await fetch(`${this.url}/api/task?id=${id}`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) });
    return (await response.json()) as { result: number };
  }

  async waitDone(id: string, timeoutMs = 60_000): Promise<GatewayTask> {
    return waitFor(
      async () => {
        const answer = await this.get(id);
        return answer.task?.done ? answer.task : undefined;
      },
      { what: `task ${id} to finish`, timeoutMs, intervalMs: 50 },
    );
  }
}

export interface GatewayTask {
  id: string;
  user: number;
  done: boolean;
  status: number;
  executor: string | null;
  add_time: string;
  report_time: string;
  retries?: number;
  result: { compile_output: string; compile_error: string; execute_output: string; execute_error: string; accepted?: boolean | null } | null;
}
