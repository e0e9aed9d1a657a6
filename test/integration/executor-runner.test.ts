// One task's life on an executor, with real bash processes: the original's directory layout, compile
// then execute with input, timeouts with the original's texts, nothing of a step left running after a
// timeout or a cancel (checked in the process table), cancel between compile and execute, the output
// cap, non-UTF-8 output, refused zips, preparation failures that end in a final status, `accepted`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { zipSync, type Zippable } from 'fflate';
import { newId } from '../../src/common/ids';
import { unpackBytes } from '../../src/task/codec';
import { COMPILE_TIMEOUT_TEXT, EXECUTE_TIMEOUT_TEXT, TaskStatus } from '../../src/task/types';
import type { Confinement, StepPlan, StepRequest } from '../../src/executor/confinement';
import { recordGroup } from '../../src/executor/process-group';
import type { TaskRun } from '../../src/executor/runner';
import { clearDataDir } from '../../src/executor/workdir';
import { MODES, harness, text, type Mode } from '../helpers/executor-harness';
import { processesMentioning } from '../helpers/process-table';
import { makeTask } from '../helpers/task';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

function zip(files: Zippable): Buffer {
  return Buffer.from(zipSync(files));
}

/** A number no other test uses, so a `sleep <marker>` is found in the process table by its argument. */
function marker(): string {
  return String(900_000 + Math.floor(Math.random() * 99_999));
}

function sleepers(mark: string) {
  return processesMentioning(`sleep ${mark}`);
}

for (const mode of MODES) test(`[${mode}] the task dir is laid out as the original: sources on top, data/, compile.sh, execute.in, execute.sh`, async (t) => {
  const h = await harness(t, mode);
  const run = await h.run({
    source: zip({ 'src.txt': Buffer.from('bebebe\n'), 'compile.sh': Buffer.from('echo from the zip'), sub: { 'deep.txt': Buffer.from('deep') } }),
    data: zip({ 'raw.dat': Buffer.from('nrnrnr\n') }),
    compile: 'cat src.txt; echo compiled.; L=$(ls -1 | sort); echo "$L" > listing; cat sub/deep.txt >&2',
    execute: 'cat data/raw.dat; echo executed.; cat listing; cat; echo "home=$HOME" >&2',
    input: 'the input\n',
  });
  assert.equal(run.status, TaskStatus.SUCCESS, text(run, 'compile_error') + text(run, 'execute_error'));
  assert.equal(text(run, 'compile_output'), 'bebebe\ncompiled.\n');
  assert.equal(text(run, 'compile_error'), 'deep');
  assert.equal(
    text(run, 'execute_output'),
    'nrnrnr\nexecuted.\n' + ['compile.sh', 'data', 'execute.in', 'execute.sh', 'src.txt', 'sub'].join('\n') + '\nthe input\n',
  );
  assert.match(text(run, 'execute_error'), new RegExp(`^home=${path.join(h.dataDir, run.id)}`));
  assert.equal(run.result!.accepted, null);
  assert.equal(run.result!.compile!.exit_code, 0);
  assert.equal(run.result!.execute!.exit_code, 0);
  assert.equal(run.result!.execute!.stopped, null);
  assert.ok(run.result!.execute!.wall_ms >= 0);
  assert.equal(fs.existsSync(path.join(h.dataDir, run.id)), false, 'the task dir is removed afterwards');
});

for (const mode of MODES) test(`[${mode}] a failing compile ends as Compile failed with its stderr, and execute does not run`, async (t) => {
  const h = await harness(t, mode);
  const witness = path.join(makeTempDir(t), 'executed');
  const run = await h.run({ compile: 'echo out; echo broken >&2; exit 3', execute: `touch ${witness}` });
  assert.equal(run.status, TaskStatus.COMPILE_FAILED);
  assert.equal(text(run, 'compile_output'), 'out\n');
  assert.equal(text(run, 'compile_error'), 'broken\n');
  assert.equal(run.result!.compile!.exit_code, 3);
  assert.equal(run.result!.execute, null);
  assert.equal(fs.existsSync(witness), false);
});

for (const mode of MODES) test(`[${mode}] a failing execute ends as Run failed with its exit code`, async (t) => {
  const h = await harness(t, mode);
  const run = await h.run({ execute: 'echo partial; kill -TERM $$' });
  assert.equal(run.status, TaskStatus.RUN_FAILED);
  assert.equal(text(run, 'execute_output'), 'partial\n');
  // In the sandbox the step's top process is bwrap, which reports its child's signal as 128 + n.
  const { exit_code, signal } = run.result!.execute!;
  assert.ok((exit_code === null && signal === 'SIGTERM') || (mode === 'confined' && exit_code === 143 && signal === null), `exit ${exit_code}, signal ${signal}`);
});

for (const mode of MODES) test(`[${mode}] compile timeout: "Compile time out.", and a background child does not outlive it`, async (t) => {
  const h = await harness(t, mode);
  const mark = marker();
  const run = await h.run({ compile: `sleep ${mark} & echo started; sleep ${mark}`, compileTimeout: 1 });
  assert.equal(run.status, TaskStatus.COMPILE_FAILED);
  assert.equal(text(run, 'compile_error'), COMPILE_TIMEOUT_TEXT);
  assert.equal(text(run, 'compile_output'), 'started\n');
  assert.equal(run.result!.compile!.stopped, 'time');
  assert.equal(run.result!.compile!.signal, 'SIGKILL');
  assert.ok(run.result!.compile!.wall_ms >= 900 && run.result!.compile!.wall_ms < 5000, `wall ${run.result!.compile!.wall_ms} ms`);
  assert.deepEqual(sleepers(mark), [], 'no sleep survives the timeout');
});

for (const mode of MODES) test(`[${mode}] execute timeout: "Execution time out." and Run failed`, async (t) => {
  const h = await harness(t, mode);
  const mark = marker();
  const run = await h.run({ compile: 'echo ok', execute: `(sleep ${mark}; echo never) & sleep ${mark}`, executeTimeout: 1 });
  assert.equal(run.status, TaskStatus.RUN_FAILED);
  assert.equal(text(run, 'execute_error'), EXECUTE_TIMEOUT_TEXT);
  assert.equal(run.result!.execute!.stopped, 'time');
  assert.deepEqual(sleepers(mark), []);
});

for (const mode of MODES) test(`[${mode}] a background child of a step that exits normally is killed with its group`, async (t) => {
  const h = await harness(t, mode);
  const mark = marker();
  const run = await h.run({ compile: `nohup sleep ${mark} >/dev/null 2>&1 & echo bye`, execute: 'echo run' });
  assert.equal(run.status, TaskStatus.SUCCESS);
  assert.equal(text(run, 'compile_output'), 'bye\n');
  assert.deepEqual(sleepers(mark), []);
});

for (const mode of MODES) test(`[${mode}] timeouts of 0 mean no limit`, async (t) => {
  const h = await harness(t, mode);
  const run = await h.run({ compile: 'sleep 1.2', execute: 'sleep 1.2', compileTimeout: 0, executeTimeout: 0 });
  assert.equal(run.status, TaskStatus.SUCCESS);
  assert.equal(text(run, 'compile_output'), '');
  assert.equal(text(run, 'execute_output'), '');
});

for (const mode of MODES) test(`[${mode}] a cancel during compile kills the whole group and keeps no result`, async (t) => {
  const h = await harness(t, mode);
  const mark = marker();
  const run = h.start(makeTask({ compile: `sleep ${mark} & sleep ${mark}`, compileTimeout: 100 }));
  await waitFor(() => sleepers(mark).length === 2, { what: 'both sleeps to run' });
  run.cancel();
  await run.done;
  assert.equal(run.cancelled, true);
  assert.equal(run.result, null);
  assert.deepEqual(sleepers(mark), []);
  assert.equal(fs.existsSync(path.join(h.dataDir, run.id)), false);
});

for (const mode of MODES) test(`[${mode}] a cancel during execute kills it; a cancel after the result is ready is ignored`, async (t) => {
  const h = await harness(t, mode);
  const mark = marker();
  const run = h.start(makeTask({ compile: 'true', execute: `sleep ${mark}` }));
  await waitFor(() => run.status === TaskStatus.RUNNING && sleepers(mark).length === 1, { what: 'the execute step to run' });
  run.cancel();
  await run.done;
  assert.equal(run.result, null);
  assert.deepEqual(sleepers(mark), []);

  const done = await h.run({ execute: 'echo fine' });
  done.cancel();
  assert.equal(done.cancelled, false);
  assert.equal(done.status, TaskStatus.SUCCESS);
});

for (const mode of ['plain' as Mode]) test(`[${mode}] a cancel between compile and execute stops the execute step (the original ran it anyway)`, async (t) => {
  const witness = path.join(makeTempDir(t), 'executed');
  let run: TaskRun | undefined;
  // The cancel arrives exactly in the window: compile has finished, execute is being set up.
  const wrap = (inner: Confinement): Confinement => ({
    prepare: (slot, paths) => inner.prepare(slot, paths),
    release: (slot, dir) => inner.release(slot, dir),
    plan: async (request: StepRequest): Promise<StepPlan> => {
      if (request.step === 'execute') run!.cancel();
      return inner.plan(request);
    },
  });
  // Plain only: a sandboxed step could not write the witness outside its directory anyway.
  const h = await harness(t, mode, { wrap });
  run = h.start(makeTask({ compile: 'echo compiled', execute: `touch ${witness}` }));
  await run.done;
  assert.equal(run.cancelled, true);
  assert.equal(run.result, null);
  assert.equal(fs.existsSync(witness), false, 'the execute step never started');
});

for (const mode of MODES) test(`[${mode}] output beyond the cap stops the step with the original texts`, async (t) => {
  const h = await harness(t, mode, { outputLimit: 1000 });
  const printer = await h.run({ execute: 'yes kv2' });
  assert.equal(printer.status, TaskStatus.RUN_FAILED);
  assert.equal(text(printer, 'execute_error'), 'Execution output limitation exceeded.');
  assert.equal(unpackBytes(printer.result!.execute_output).length, 1000);
  assert.equal(printer.result!.execute!.stopped, 'output');

  const compile = await h.run({ compile: 'head -c 5000 /dev/zero >&2; echo done', execute: 'echo never' });
  assert.equal(compile.status, TaskStatus.COMPILE_FAILED);
  assert.equal(text(compile, 'compile_error'), 'Compile output limitation exceeded.');

  const fits = await h.run({ execute: 'head -c 1000 /dev/zero' });
  assert.equal(fits.status, TaskStatus.SUCCESS, 'exactly the limit is fine');

  const asked = await h.run({ execute: 'head -c 600 /dev/zero', executeLimits: { output: 500 } });
  assert.equal(asked.status, TaskStatus.RUN_FAILED, 'a task may ask for a lower cap');
});

for (const mode of MODES) test(`[${mode}] output that is not UTF-8 comes back byte for byte`, async (t) => {
  const h = await harness(t, mode);
  const run = await h.run({ execute: "printf '\\377\\376\\000abc\\200'" });
  assert.equal(run.status, TaskStatus.SUCCESS);
  assert.deepEqual(unpackBytes(run.result!.execute_output), Buffer.from([0xff, 0xfe, 0x00, 0x61, 0x62, 0x63, 0x80]));
});

for (const mode of MODES) test(`[${mode}] zips with "..", absolute paths or links are refused, and the task fails saying why`, async (t) => {
  const h = await harness(t, mode);
  const outside = makeTempDir(t);
  const cases: [string, Buffer, RegExp][] = [
    ['dot-dot', zip({ '../../../escaped.txt': Buffer.from('x') }), /contains "\.\."/],
    ['absolute', zip({ [`${outside}/abs.txt`]: Buffer.from('x') }), /absolute path/],
    ['symlink', zip({ link: [Buffer.from(outside), { os: 3, attrs: (0o120777 << 16) >>> 0 }] }), /symbolic link/],
    ['not a zip', Buffer.from('PK this is not a zip at all, just text pretending'), /not a zip/],
  ];
  for (const [name, source, reason] of cases) {
    const run = await h.run({ source, compile: 'echo compiled' });
    assert.equal(run.status, TaskStatus.COMPILE_FAILED, name);
    assert.match(text(run, 'compile_error'), /^Preparation failed: compile source zip refused: /, name);
    assert.match(text(run, 'compile_error'), reason, name);
    assert.equal(text(run, 'compile_output'), '', name);
  }
  const data = await h.run({ data: zip({ '../up.txt': Buffer.from('x') }) });
  assert.equal(data.status, TaskStatus.COMPILE_FAILED);
  assert.match(text(data, 'compile_error'), /execute data zip refused: .*"\.\."/);
  assert.deepEqual(fs.readdirSync(outside), []);
  assert.deepEqual(fs.readdirSync(h.dataDir), [], 'refused tasks leave nothing behind');
});

for (const mode of MODES) test(`[${mode}] a zip bomb is refused before it fills the disk`, async (t) => {
  const h = await harness(t, mode, { zipLimits: { maxBytes: 1024 * 1024, maxFiles: 10 } });
  const bomb = await h.run({ source: zip({ 'zeros.bin': new Uint8Array(20 * 1024 * 1024) }) });
  assert.equal(bomb.status, TaskStatus.COMPILE_FAILED);
  assert.match(text(bomb, 'compile_error'), /more than the limit of 1048576 bytes/);
  const files: Zippable = {};
  for (let i = 0; i < 11; i++) files[`f${i}`] = Buffer.from('x');
  const many = await h.run({ source: zip(files) });
  assert.match(text(many, 'compile_error'), /11 entries, more than the limit of 10/);
});

for (const mode of MODES) test(`[${mode}] a task that plants links to outside files cannot make the cleanup touch them`, async (t) => {
  const h = await harness(t, mode);
  const outside = makeTempDir(t);
  fs.writeFileSync(path.join(outside, 'precious'), 'keep me');
  const run = await h.run({ execute: `ln -s ${outside} dirlink; ln -s ${outside}/precious filelink; mkdir locked; ln -s ${outside} locked/inner; chmod 000 locked` });
  assert.equal(run.status, TaskStatus.SUCCESS, text(run, 'execute_error'));
  assert.equal(fs.existsSync(path.join(h.dataDir, run.id)), false);
  assert.equal(fs.readFileSync(path.join(outside, 'precious'), 'utf8'), 'keep me');
});

for (const mode of MODES) test(`[${mode}] bad zlib in a command ends the task as Compile failed, not in a non-final status`, async (t) => {
  const h = await harness(t, mode);
  const task = makeTask({ execute: 'echo x' });
  task.compile.command = Buffer.from('definitely not zlib');
  const run = h.start(task);
  await run.done;
  assert.equal(run.status, TaskStatus.COMPILE_FAILED);
  assert.equal(text(run, 'compile_error'), 'Preparation failed: the compile command is not valid zlib data');
});

for (const mode of MODES) test(`[${mode}] accepted: true when the output matches the standard up to trailing whitespace, false when not, null otherwise`, async (t) => {
  const h = await harness(t, mode);
  const yes = await h.run({ execute: "printf 'a b  \\nc\\t\\n\\n\\n'", standard: 'a b\nc\n' });
  assert.equal(yes.status, TaskStatus.SUCCESS);
  assert.equal(yes.result!.accepted, true);
  const no = await h.run({ execute: 'echo 42', standard: '43\n' });
  assert.equal(no.result!.accepted, false);
  const inner = await h.run({ execute: "printf 'a  b\\n'", standard: 'a b\n' });
  assert.equal(inner.result!.accepted, false, 'whitespace inside a line counts');
  const none = await h.run({ execute: 'echo 42' });
  assert.equal(none.result!.accepted, null, 'no standard: null');
  const failed = await h.run({ execute: 'echo 42; exit 1', standard: '42\n' });
  assert.equal(failed.status, TaskStatus.RUN_FAILED);
  assert.equal(failed.result!.accepted, null, 'a failed execute is not judged');
});

for (const mode of MODES) test(`[${mode}] a result that would take the task past the size limit is replaced by the original text`, async (t) => {
  const h = await harness(t, mode, { taskMaxSize: 64 * 1024 });
  const run = await h.run({ execute: 'head -c 200000 /dev/urandom' });
  assert.equal(run.status, TaskStatus.RUN_FAILED);
  assert.equal(text(run, 'execute_output'), '');
  assert.equal(text(run, 'execute_error'), 'Execution output limitation exceeded.');
});

test('at start, leftovers of a previous run are killed and the data dir is emptied', async (t) => {
  const h = await harness(t, 'plain');
  const mark = marker();
  const taskDir = path.join(h.dataDir, newId());
  fs.mkdirSync(path.join(taskDir, 'source'), { recursive: true });
  const child = spawn('bash', ['-c', `sleep ${mark} & sleep ${mark}`], { detached: true, stdio: 'ignore' });
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  });
  await waitFor(() => sleepers(mark).length >= 2, { what: 'the leftover sleeps to run' });
  recordGroup(path.join(taskDir, 'compile.pgid'), child.pid!);
  const cleared = await clearDataDir(h.dataDir);
  assert.equal(cleared.dirs, 1);
  assert.ok(cleared.killed >= 2, `killed ${cleared.killed}`);
  assert.deepEqual(sleepers(mark), []);
  assert.deepEqual(fs.readdirSync(h.dataDir), []);
  assert.equal(fs.statSync(h.dataDir).mode & 0o777, 0o700);
});

for (const mode of MODES) test(`[${mode}] several tasks run at once, each in its own directory`, async (t) => {
  const h = await harness(t, mode);
  const runs = await Promise.all(
    [1, 2, 3].map((n) => h.run({ compile: `echo ${n} > mine`, execute: `sleep 0.3; cat mine; basename "$PWD"` })),
  );
  runs.forEach((run, i) => {
    assert.equal(run.status, TaskStatus.SUCCESS);
    assert.equal(text(run, 'execute_output'), `${i + 1}\nsource\n`);
  });
});

for (const mode of MODES) test(`[${mode}] an empty script is a step that succeeds at once with no output`, async (t) => {
  const h = await harness(t, mode);
  const run = await h.run({ execute: 'echo only execute' });
  assert.equal(run.status, TaskStatus.SUCCESS);
  assert.deepEqual(run.result!.compile, { exit_code: 0, signal: null, wall_ms: 0, cpu_ms: 0, memory_kb: null, stopped: null });
  const nothing = await h.run({});
  assert.equal(nothing.status, TaskStatus.SUCCESS);
  assert.equal(text(nothing, 'execute_output'), '');
});

for (const mode of MODES) test(`[${mode}] an execute.in the compile step swapped for a link or a FIFO is refused, never followed or waited on`, async (t) => {
  const h = await harness(t, mode);
  const secret = path.join(makeTempDir(t), 'secret');
  fs.writeFileSync(secret, 'root only\n', { mode: 0o600 });
  const linked = await h.run({ compile: `rm execute.in; ln -s ${secret} execute.in`, execute: 'cat' });
  assert.equal(linked.status, TaskStatus.RUN_FAILED);
  assert.equal(text(linked, 'execute_output'), '');
  assert.match(text(linked, 'execute_error'), /^Unknown error\. cannot open the step's input/);
  const fifo = await h.run({ compile: 'rm execute.in; mkfifo execute.in', execute: 'cat' });
  assert.equal(fifo.status, TaskStatus.RUN_FAILED);
  assert.match(text(fifo, 'execute_error'), /not a regular file/);
  const rewritten = await h.run({ compile: 'echo "echo rewritten" > execute.sh', execute: '' });
  assert.equal(text(rewritten, 'execute_output'), 'rewritten\n', 'a compile step may still write execute.sh');
});
