// The floor: a plain Node loop in the benchmark process spawning each task's command with the same
// concurrency as the others (4 slots), no queue, no store, no network. No platform can beat it.
import { wallNs } from '../lib/clock';
import { spawnTask } from './spawn-task';
import { ACCEPTED, PAYLOAD_FILE, shellCommand, type BenchSystem, type Held, type TaskSpec } from './system';

interface FloorTicket {
  result: Promise<Held>;
}

export class FloorSystem implements BenchSystem<FloorTicket> {
  readonly name = 'floor';
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly slots: number,
    private readonly tmpRoot: string,
  ) {}

  async submit(spec: TaskSpec): Promise<FloorTicket> {
    const result = this.run(spec);
    result.catch(() => undefined); // collected later; not an unhandled rejection meanwhile
    return { result };
  }

  collect(tickets: readonly Promise<FloorTicket>[]): Promise<Held[]> {
    return Promise.all(tickets.map(async (ticket) => (await ticket).result));
  }

  private async run(spec: TaskSpec): Promise<Held> {
    // A slot is handed straight from a finishing task to the next waiting one.
    if (this.running >= this.slots) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.running++;
    try {
      if (spec.kind === 'judged') {
        // The same tests, one spawn each in the task's slot, each output compared: what kv2 does, less its
        // fresh work dir, limits and sandbox per test.
        let accepted = true;
        for (const test of spec.tests) {
          const output = await spawnTask(shellCommand(spec), undefined, PAYLOAD_FILE, this.tmpRoot, test.input);
          accepted &&= output === test.output;
        }
        return { output: accepted ? ACCEPTED : 'wrong_answer', heldNs: wallNs() };
      }
      const output = await spawnTask(shellCommand(spec), spec.kind === 'payload' ? spec.source : undefined, PAYLOAD_FILE, this.tmpRoot);
      return { output, heldNs: wallNs() };
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }

  async stop(): Promise<void> {}
}
