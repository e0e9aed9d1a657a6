// kv2 under test, through its gateway's HTTP API exactly as a user submits: `kv2 standalone` (judicator +
// executor + gateway under one supervisor, etcd store) or a cluster of 3 judicators, 2 executors and a
// gateway, all of the same binary on loopback ports. Results are read with the gateway's wait route
// (`GET /api/task?id=..&wait=s`), which answers the moment the task is done.
import fs from 'node:fs';
import { judicatorPortFlags, judicatorPorts, killLeftovers, startNode, waitForJudicator, type Kv2Node } from '../../test/helpers/kv2';
import { restartJudicator, startJudicators, type ClusterNode } from '../../test/helpers/cluster';
import { startExecutor, startGateway } from '../../test/helpers/system';
import { freePort } from '../../test/helpers/ports';
import { waitFor } from '../../test/helpers/wait';
import { hooks, tempDir } from '../lib/cleanup';
import { msBetween, sleep, wallNs } from '../lib/clock';
import { HttpClient } from '../lib/http';
import { kv2Label, treeMemory, type ProcessMemory } from '../lib/memory';
import { CLOCK_COMMAND, JUDGED_COMMAND, PAYLOAD_COMMAND, PAYLOAD_FILE, type BenchSystem, type Held, type TaskSpec } from './system';

/** Flags every kv2 node of the benchmark gets: the etcd store (not MongoDB, even where a mongod is found). */
const STORE_FLAGS = ['--store', 'etcd'];
/** Tasks run unsandboxed, as the other systems run them (the kv2-bwrap variant aside). */
const EXECUTOR_FLAGS = ['--main-task-sandbox', 'none'];
/** How long the failover measurement waits for a task to start after the leader's death. */
const FAILOVER_TIMEOUT_MS = 60_000;
/** Pause between submissions while no judicator takes them during a failover. */
const FAILOVER_RETRY_MS = 20;

/** Workload (e): the leader killed with SIGKILL on an idle cluster, then started again. */
export type FailoverFigures = {
  /** From the SIGKILL to the start of the first task submitted after it. */
  nextStartMs: number;
  /** From starting the killed judicator again to its being ready (registered, healthy). */
  readyMs: number;
};
/** Seconds one wait call may hold (the gateway's maximum is 60); a task not done by then is asked again. */
const WAIT_S = 30;
/** Each step's timeout, seconds (the tasks take milliseconds). */
const STEP_TIMEOUT_S = 30;

interface GatewayTaskAnswer {
  result: number;
  task: { done: boolean; status: number; result: { execute_output: string; compile_error: string; execute_error: string; verdict?: string | null } | null } | null;
  message?: string;
}

/** The gateway's form fields for a task kind. kv2 runs `bash execute.sh`, so `echo hello` is the same one shell as the others' `sh -c 'echo hello'`. */
function formFields(spec: TaskSpec): Record<string, string> {
  const fields: Record<string, string> = {
    user: '1',
    compile_command: '',
    compile_timeout: String(STEP_TIMEOUT_S),
    execute_input: '',
    execute_command: spec.kind === 'hello' ? 'echo hello' : spec.kind === 'clock' ? CLOCK_COMMAND : PAYLOAD_COMMAND,
    execute_timeout: String(STEP_TIMEOUT_S),
    execute_standard: '',
  };
  if (spec.kind === 'payload') {
    fields.compile_source_name = PAYLOAD_FILE;
    fields.compile_source_str = spec.source;
  }
  if (spec.kind === 'judged') {
    fields.execute_command = JUDGED_COMMAND;
    fields.tests = JSON.stringify(spec.tests);
    fields.test_mode = 'all';
  }
  return fields;
}

export class Kv2System implements BenchSystem<string> {
  private readonly client: HttpClient;
  /** Tasks submitted with tests: their result is their verdict, not their output. */
  private readonly judged = new Set<string>();

  private constructor(
    readonly name: string,
    readonly url: string,
    /** Supervisor pids by role name, for memory figures. */
    private readonly roots: { role: string; node: Kv2Node }[],
    /** The cluster's judicators (none for standalone). */
    private readonly judicators: ClusterNode[] = [],
  ) {
    this.client = new HttpClient(new URL(url), 128);
  }

  /**
   * `kv2 standalone` with `slots` slots, on free loopback ports; `sandbox` bwrap runs each step in
   * bubblewrap as the executor ships (the work dir searchable by the task users, as /var/lib/kv2 is).
   */
  static async standalone(binary: string, slots: number, sandbox: 'none' | 'bwrap' = 'none'): Promise<Kv2System> {
    const dir = tempDir('kv2-bench-standalone-');
    fs.chmodSync(dir, 0o755);
    const ports = await judicatorPorts();
    const serverPort = await freePort();
    const args = [
      'standalone',
      ...judicatorPortFlags(ports),
      '--server-port', String(serverPort),
      '--server-host', '127.0.0.1',
      '--etcd-name', 'bench',
      '--main-name', 'bench',
      '--main-task-vacant', String(slots),
      ...STORE_FLAGS,
      '--main-task-sandbox', sandbox,
    ];
    const node = startNode(hooks, dir, args, { binary });
    const system = new Kv2System(sandbox === 'none' ? 'kv2' : `kv2 (${sandbox})`, `http://127.0.0.1:${serverPort}`, [{ role: 'standalone', node }]);
    await system.ready(1, () => node.exited, () => node.tail());
    return system;
  }

  /** 3 judicators, 2 executors sharing `slots` slots, one gateway: each its own supervisor. */
  static async cluster(slots: number): Promise<Kv2System> {
    const judicators = await startJudicators(hooks, 3, STORE_FLAGS);
    const perExecutor = Math.max(1, Math.floor(slots / 2));
    // They join through the judicators' RPC (mutual TLS) with the first judicator's join token file.
    const executors = [1, 2].map((i) => startExecutor(hooks, `e${i}`, judicators, ['--main-task-vacant', String(perExecutor), ...EXECUTOR_FLAGS]));
    const gateway = await startGateway(hooks, judicators);
    const roots = [
      ...judicators.map((j) => ({ role: `judicator ${j.name}`, node: j.node })),
      ...executors.map((e) => ({ role: `executor ${e.name}`, node: e.node })),
      { role: 'gateway', node: gateway.node },
    ];
    const system = new Kv2System('kv2 3j+2e', gateway.url, roots, judicators);
    const all = () => roots.map((r) => r.node);
    await system.ready(2, () => all().some((n) => n.exited), () => all().map((n) => n.tail(10)).join('\n'));
    return system;
  }

  /** Healthy gateway and `executors` executors registered. */
  private async ready(executors: number, exited: () => boolean, tail: () => string): Promise<void> {
    await waitFor(
      async () => {
        if (exited()) throw new Error(`kv2 exited while starting:\n${tail()}`);
        const health = await this.client.json<{ healthy?: boolean }>('GET', '/api/health').catch(() => undefined);
        if (!health?.healthy) return false;
        const list = await this.client.json<{ executors?: unknown[] }>('GET', '/api/executors');
        return (list.executors?.length ?? 0) >= executors;
      },
      { what: `${this.name} to be healthy with ${executors} executor(s)`, timeoutMs: 120_000, intervalMs: 200 },
    );
  }

  async submit(spec: TaskSpec): Promise<string> {
    const answer = await this.client.json<{ result: number; id: string | null; message?: string }>('POST', '/api/task', new URLSearchParams(formFields(spec)).toString());
    if (answer.result !== 0 || !answer.id) throw new Error(`kv2 refused a task: result ${answer.result} ${answer.message ?? ''}`);
    if (spec.kind === 'judged') this.judged.add(answer.id);
    return answer.id;
  }

  /**
   * Waits for the tasks in submission order (they finish in about that order): each wait call returns the
   * moment its task is done, at once for one done already.
   */
  async collect(tickets: readonly Promise<string>[]): Promise<Held[]> {
    const held: Held[] = [];
    for (const ticket of tickets) {
      const id = await ticket;
      for (;;) {
        const answer = await this.client.json<GatewayTaskAnswer>('GET', `/api/task?id=${id}&no_truncate=1&wait=${WAIT_S}`);
        const task = answer.task;
        if (answer.result !== 0 || !task) throw new Error(`kv2 lost task ${id}: result ${answer.result} ${answer.message ?? ''}`);
        if (task.done) {
          const now = wallNs();
          if (task.status !== 5 || !task.result) throw new Error(`kv2 task ${id} ended with status ${task.status}: ${task.result?.compile_error ?? ''}${task.result?.execute_error ?? ''}`);
          const judged = this.judged.delete(id);
          held.push({ output: judged ? (task.result.verdict ?? '') : task.result.execute_output, heldNs: now });
          break;
        }
      }
    }
    return held;
  }

  /**
   * Workload (e) on the cluster: SIGKILL every process of the leading judicator (a lost machine), submit
   * `date +%s%N` tasks until one is taken and runs (its start against the kill's time), then start the
   * judicator again in its old work dir and time it to ready; returns once the cluster is whole again.
   */
  async failover(): Promise<FailoverFigures> {
    const list = await this.client.json<{ judicators?: { name: string; leader: boolean }[] }>('GET', '/api/judicators');
    const leaderName = list.judicators?.find((j) => j.leader)?.name.split('/').pop();
    const index = this.judicators.findIndex((j) => j.name === leaderName);
    if (index < 0) throw new Error(`no leader among the judicators (${JSON.stringify(list.judicators)})`);
    const leader = this.judicators[index]!;
    const killedAt = wallNs();
    killLeftovers(leader.dir);
    await leader.node.waitExit();
    let nextStartMs = NaN;
    await waitFor(
      async () => {
        try {
          const [held] = await this.collect([this.submit({ kind: 'clock' })]);
          nextStartMs = msBetween(killedAt, BigInt(held!.output.trim()));
          return true;
        } catch {
          await sleep(FAILOVER_RETRY_MS);
          return false;
        }
      },
      { what: 'a task to start after the leader was killed', timeoutMs: FAILOVER_TIMEOUT_MS, intervalMs: 1 },
    );
    const restarting = wallNs();
    const restarted = restartJudicator(hooks, leader);
    await waitForJudicator(restarted.node, restarted.ports.rpc, FAILOVER_TIMEOUT_MS);
    const readyMs = msBetween(restarting, wallNs());
    this.judicators[index] = restarted;
    const root = this.roots.find((r) => r.node === leader.node);
    if (root) root.node = restarted.node;
    await waitFor(
      async () => ((await this.client.json<{ judicators?: unknown[] }>('GET', '/api/judicators')).judicators?.length ?? 0) >= this.judicators.length,
      { what: 'every judicator to be registered again', timeoutMs: FAILOVER_TIMEOUT_MS, intervalMs: 100 },
    );
    return { nextStartMs, readyMs };
  }

  /** Every kv2 process (supervisors, modules, etcd, the step launcher), labelled by role and module. */
  memory(): ProcessMemory[] {
    return this.roots.flatMap(({ role, node }) =>
      node.process.pid === undefined ? [] : treeMemory(node.process.pid, (cmdline) => {
        const label = kv2Label(cmdline);
        return label === undefined ? undefined : this.roots.length === 1 ? label : `${role}: ${label}`;
      }),
    );
  }

  async stop(): Promise<void> {
    this.client.close();
    await Promise.all(this.roots.map(({ node }) => node.stop('SIGINT').catch(() => node.stop('SIGKILL'))));
  }
}
