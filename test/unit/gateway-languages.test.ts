// GET /api/languages' counting: per language and version, over the executors whose registration is
// alive; executors with another version of a toolchain make an entry of their own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { languagesOf } from '../../src/gateway/api/cluster';
import type { ExecutorInfo } from '../../src/task/types';

const executor = (id: string, languages: [string, string][], alive?: boolean): ExecutorInfo => ({
  id,
  hostname: id,
  report_time: '',
  ...(alive === undefined ? {} : { alive }),
  languages: languages.map(([name, version]) => ({ name, version })),
});

test('each language and version is counted once per live executor, sorted by name, the most executors first', () => {
  const counted = languagesOf([
    executor('e1', [['C++', '12.2.0'], ['Python 3', '3.11.2'], ['Java', '17.0.15']]),
    executor('e2', [['C++', '12.2.0'], ['Python 3', '3.11.2']], true),
    executor('e3', [['C++', '13.1.0']]),
    executor('gone', [['C++', '12.2.0'], ['Rust', '1.80.0']], false),
  ]);
  assert.deepEqual(counted, [
    { name: 'C++', version: '12.2.0', executors: 2 },
    { name: 'C++', version: '13.1.0', executors: 1 },
    { name: 'Java', version: '17.0.15', executors: 1 },
    { name: 'Python 3', version: '3.11.2', executors: 2 },
  ]);
});

test('executors that registered no languages (older ones) add nothing', () => {
  assert.deepEqual(languagesOf([{ id: 'old', hostname: 'old', report_time: '' }]), []);
});
