// The rlimits of a step set by the `ulimit` builtin of the shell that starts it: probed at start, they
// come out as prlimit would set them (soft and hard, to the byte), and a limit the shell cannot say to
// the byte is left to prlimit (or rounded down, never up, without it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { ShellUlimit, prlimitArgs, type LimitValues } from '../../src/executor/limits';

const MiB = 1024 * 1024;
const limits: LimitValues = { cpu_time: 2.5, memory: 0, processes: 0, file_size: 3 * MiB, output: MiB };
const extra = { addressSpace: 512 * MiB, processes: 77 };

/** Soft and hard limits as /proc/self/limits shows them, by name. */
function limitsAfter(shell: string, commands: string): Map<string, [string, string]> {
  const result = spawnSync(shell, ['-c', `${commands} && exec cat /proc/self/limits`], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const table = new Map<string, [string, string]>();
  for (const line of result.stdout.split('\n')) {
    const match = /^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    if (match) table.set(match[1]!, [match[2]!, match[3]!]);
  }
  return table;
}

for (const shell of ['/bin/sh', '/bin/bash']) {
  test(`${shell}: ulimit sets the limits prlimit would, soft and hard`, (t) => {
    if (!fs.existsSync(shell)) return t.skip(`no ${shell} here`);
    const ulimit = ShellUlimit.probe(shell);
    if (!ulimit) return t.skip(`${shell}'s ulimit is not one kv2 knows (prlimit sets the limits there)`);
    const commands = ulimit.commands(limits, extra, true);
    assert.ok(commands);
    const table = limitsAfter(shell, commands);
    assert.deepEqual(table.get('Max core file size'), ['0', '0']);
    // As prlimit's --cpu=3:4: SIGXCPU at the soft limit, SIGKILL a second later.
    assert.ok(prlimitArgs(limits, extra).includes('--cpu=3:4'));
    assert.deepEqual(table.get('Max cpu time'), ['3', '4']);
    assert.deepEqual(table.get('Max file size'), [String(3 * MiB), String(3 * MiB)]);
    assert.deepEqual(table.get('Max address space'), [String(512 * MiB), String(512 * MiB)]);
    assert.deepEqual(table.get('Max processes'), ['77', '77']);
  });

  test(`${shell}: a limit that is not a whole number of ulimit's units goes to prlimit, or is rounded down`, (t) => {
    if (!fs.existsSync(shell)) return t.skip(`no ${shell} here`);
    const ulimit = ShellUlimit.probe(shell);
    if (!ulimit) return t.skip(`${shell}'s ulimit is not one kv2 knows`);
    const odd = { ...limits, file_size: 3 * MiB + 100 };
    assert.equal(ulimit.commands(odd, extra, true), undefined, 'left to prlimit, which sets it to the byte');
    const rounded = limitsAfter(shell, ulimit.commands(odd, { addressSpace: 512 * MiB + 100, processes: 0 }, false)!);
    const [soft] = rounded.get('Max file size')!;
    assert.ok(Number(soft) <= 3 * MiB + 100 && Number(soft) > 3 * MiB + 100 - 1024, `file size ${soft}`);
    const [space] = rounded.get('Max address space')!;
    assert.equal(Number(space), 512 * MiB, 'rounded down to the KiB');
  });
}

test('limits that are not set are left alone', (t) => {
  const ulimit = ShellUlimit.probe('/bin/sh');
  if (!ulimit) return t.skip("/bin/sh's ulimit is not one kv2 knows");
  const none = { cpu_time: 0, memory: 0, processes: 0, file_size: 0, output: 0 };
  assert.equal(ulimit.commands(none, { addressSpace: 0, processes: 0 }, true), 'ulimit -c 0');
});
