// What the container tests ask of a kv2 gateway over HTTP, as a user would: is it healthy, the README's
// C++ example submitted with the README's own curl command, a task's result once it is done.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sectionBlocks } from './docs-commands';
import { tail } from './engine';

/** Seconds one `wait` read of a task may hold (the gateway's maximum is 60). */
const TASK_WAIT_S = 30;

export async function getJson(url: string, timeoutMs = 10_000): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

export async function gatewayHealthy(gateway: string): Promise<boolean> {
  try {
    const { status, body } = await getJson(`${gateway}/api/health`, 5_000);
    return status === 200 && body.healthy === true;
  } catch {
    return false;
  }
}

/**
 * Runs the README's "Submit a task" block (writes main.cpp, curls it to the gateway) in `dir` against
 * `gateway` instead of localhost:7000, and returns the new task's id.
 */
export function submitReadmeExample(gateway: string, dir: string): string {
  const block = sectionBlocks('README.md', '## Submit a task').find((b) => b.includes('curl -s http://localhost:7000/api/task'));
  if (!block) throw new Error('README.md "## Submit a task" has no block that curls http://localhost:7000/api/task');
  const script = block.replaceAll('http://localhost:7000', gateway);
  fs.writeFileSync(path.join(dir, 'submit.sh'), script);
  const result = spawnSync('bash', ['-e', 'submit.sh'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`the README's submit block failed (exit ${result.status}):\n${tail(result.stdout)}\n${tail(result.stderr)}`);
  const answer = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { result: number; id?: string };
  if (answer.result !== 0 || !answer.id) throw new Error(`the gateway refused the README's task: ${result.stdout}`);
  return answer.id;
}

/** The task once it is done (the gateway's wait route, asked again until done or the deadline). */
export async function taskWhenDone(gateway: string, id: string, timeoutMs = 180_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const { body } = await getJson(`${gateway}/api/task?id=${id}&wait=${TASK_WAIT_S}`, (TASK_WAIT_S + 10) * 1000);
      last = body;
      if (body?.result === 0 && body.task?.done) return body.task;
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
  throw new Error(`task ${id} was not done within ${timeoutMs} ms; last answer: ${JSON.stringify(last)}`);
}

/** Submits a task with the add form's fields (as the web page and curl --form-string send them); its id. */
export async function submitForm(gateway: string, fields: Record<string, string>): Promise<string> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const response = await fetch(`${gateway}/api/task`, { method: 'POST', body: form, signal: AbortSignal.timeout(30_000) });
  const answer = (await response.json()) as { result: number; id?: string; message?: string };
  if (answer.result !== 0 || !answer.id) throw new Error(`the gateway refused the task: ${JSON.stringify(answer)}`);
  return answer.id;
}

/** "Hello, <name>!" from its input in C, Python 3 and Java: the toolchains of the judge image. */
export const HELLO_TASKS: Record<string, Record<string, string>> = {
  C: {
    compile_source_name: 'main.c',
    compile_source_str: '#include <stdio.h>\nint main(void) { char n[64]; if (scanf("%63s", n) == 1) printf("Hello, %s!\\n", n); return 0; }\n',
    compile_command: 'gcc -O2 -o main main.c',
    execute_command: './main',
  },
  'Python 3': {
    compile_source_name: 'main.py',
    compile_source_str: 'print(f"Hello, {input().strip()}!")\n',
    compile_command: 'python3 -m py_compile main.py',
    execute_command: 'python3 main.py',
  },
  Java: {
    compile_source_name: 'Main.java',
    compile_source_str: 'public class Main { public static void main(String[] a) { System.out.println("Hello, " + new java.util.Scanner(System.in).next() + "!"); } }\n',
    compile_command: 'javac Main.java',
    execute_command: 'java -Xmx256m Main',
  },
};

export function helloTask(language: string): Record<string, string> {
  return { user: '1', compile_timeout: '120', execute_timeout: '30', execute_input: 'World', execute_standard: 'Hello, World!', ...HELLO_TASKS[language]! };
}
