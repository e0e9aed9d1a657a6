// GET /api/languages and `kv2 languages` against real nodes: each executor finds the toolchains on its
// tasks' PATH at start and registers them; the gateway counts, per language and version, the live
// executors that have it. Two executors with different PATHs give different counts; one that stops drops
// out of them. Versions are checked against what the toolchains themselves say.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startJudicators } from '../helpers/cluster';
import { runKv2, startNode } from '../helpers/kv2';
import { executorArgs, startGateway, waitForExecutors } from '../helpers/system';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

interface Language {
  name: string;
  version: string;
  executors: number;
}

/** What a program prints for its version, straight from it (not through kv2). */
function says(program: string, args: string[], pattern: RegExp): string | undefined {
  const result = spawnSync(program, args, { encoding: 'utf8' });
  return result.status === 0 ? pattern.exec(`${result.stdout}\n${result.stderr}`.trim())?.[1] : undefined;
}

test('the languages of the live executors, with their versions and how many executors have each', async (t) => {
  // The interpreter itself (python3 on the PATH may be a wrapper, such as pyenv's shim, that needs more of the PATH).
  const python = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout?.trim();
  const gccVersion = says('gcc', ['-dumpfullversion'], /^(\d+(?:\.\d+)*)/);
  if (!python || !gccVersion) return t.skip('needs python3 and gcc on this machine');
  const pythonVersion = says(python, ['--version'], /Python (3\.\S+)/)!;

  const [judicator] = await startJudicators(t, 1);
  // e1 has this machine's PATH; e2's PATH holds python3 alone.
  const onlyPython = makeTempDir(t, 'kv2-path-');
  fs.symlinkSync(python, path.join(onlyPython, 'python3'));
  const e1Dir = makeTempDir(t, 'kv2-e1-');
  const e2Dir = makeTempDir(t, 'kv2-e2-');
  const e1Args = executorArgs('e1', judicator!, [], e1Dir);
  const e1 = { name: 'e1', dir: e1Dir, args: e1Args, node: startNode(t, e1Dir, e1Args) };
  const e2Args = executorArgs('e2', judicator!, ['--main-task-sandbox', 'none'], e2Dir);
  const e2 = { name: 'e2', dir: e2Dir, args: e2Args, node: startNode(t, e2Dir, e2Args, { env: { PATH: onlyPython } }) };
  const gateway = await startGateway(t, judicator!);
  await waitForExecutors(gateway.url, [e1, e2]);

  const languages = async () => ((await (await fetch(`${gateway.url}/api/languages`)).json()) as { result: number; languages: Language[] });
  const answer = await languages();
  assert.equal(answer.result, 0);
  const find = (name: string, list = answer.languages) => list.find((l) => l.name === name);
  assert.deepEqual(find('Python 3'), { name: 'Python 3', version: pythonVersion, executors: 2 });
  assert.deepEqual(find('C'), { name: 'C', version: gccVersion, executors: 1 }, 'only e1 has gcc');
  const gxx = says('g++', ['-dumpfullversion'], /^(\d+(?:\.\d+)*)/);
  if (gxx) assert.deepEqual(find('C++'), { name: 'C++', version: gxx, executors: 1 });
  const javac = says('javac', ['-version'], /javac (\S+)/);
  if (javac && says('java', ['-version'], /(.+)/)) assert.deepEqual(find('Java'), { name: 'Java', version: javac, executors: 1 });
  else assert.equal(find('Java'), undefined, 'no JDK here, so no Java');
  const names = answer.languages.map((l) => l.name);
  assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b)), 'sorted by name');

  const cli = runKv2(['languages', '--gateway', gateway.url]);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, new RegExp(`^\\s*Python 3\\s+${pythonVersion.replace(/\./g, '\\.')}\\s+2\\s*$`, 'm'));
  assert.match(cli.stdout, new RegExp(`^\\s*C\\s+${gccVersion.replace(/\./g, '\\.')}\\s+1\\s*$`, 'm'));
  const json = JSON.parse(runKv2(['languages', '--gateway', gateway.url, '--json']).stdout) as { languages: Language[] };
  assert.deepEqual(json.languages, answer.languages);

  // A stopped executor's registration goes with it: its languages are no longer counted.
  assert.equal(await e2.node.stop('SIGTERM'), 0);
  const after = await waitFor(
    async () => {
      const list = (await languages()).languages;
      return find('Python 3', list)?.executors === 1 && list;
    },
    { what: 'Python 3 to be counted once after e2 stopped', timeoutMs: 30_000 },
  );
  assert.deepEqual(find('C', after), { name: 'C', version: gccVersion, executors: 1 });
});
