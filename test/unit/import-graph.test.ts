// The house's floors hold in src/: no import circle, no arrow up a floor, no role importing another
// (build/import-graph.ts, also `npm run check:imports`). And the checker can fail: small trees written to a
// temp dir with each kind of fault are caught, with the circle's path or the offending line named.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { checkImports, formatReport, type AllowedEdge, type Floor, type Report } from '../../build/import-graph';

const src = path.resolve(import.meta.dirname, '..', '..', 'src');

test('src/ has no import circle, no arrow up a floor and no role importing another', () => {
  const report = checkImports(src);
  assert.deepEqual(report.violations, [], formatReport(report));
  assert.ok(report.graph.files.length > 100, 'the scanner found the source files');
  assert.ok(report.graph.edges.some((e) => e.dynamic), 'dynamic import() calls are edges too');
});

const temp: string[] = [];
after(() => {
  for (const dir of temp) fs.rmSync(dir, { recursive: true, force: true });
});

/** Checks a throwaway tree of .ts files (path -> content) against `floors` below. */
function check(files: Record<string, string>, allowed: AllowedEdge[] = []): Report {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-import-graph-'));
  temp.push(root);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  }
  return checkImports(root, floors, allowed);
}

const floors: Floor[] = [
  { name: 'entry', rooms: ['main.ts'] },
  { name: 'roles', rooms: ['judicator', 'executor'], apart: true },
  { name: 'services', rooms: ['store', 'etcd'] },
  { name: 'common', rooms: ['common'] },
];

test('a circle is reported with its path, even inside one room and through `export from`', () => {
  const report = check({
    'store/a.ts': "import { b } from './b';\nexport const a = b;\n",
    'store/b.ts': "export { c as b } from './c';\n",
    'store/c.ts': "import type { a } from './a';\nexport const c = 1 as unknown as typeof a;\n",
  });
  assert.deepEqual(
    report.violations.map((v) => v.kind),
    ['cycle'],
  );
  assert.match(report.violations[0]!.message, /store\/a\.ts -> store\/b\.ts -> store\/c\.ts -> store\/a\.ts/);
});

test('an arrow up a floor is reported, a dynamic import() too, with file and line', () => {
  const report = check({
    'main.ts': "import { run } from './judicator/run';\nrun();\n",
    'judicator/run.ts': "import { now } from '../common/time';\nexport const run = () => now();\n",
    'common/time.ts': "export const now = () => Date.now();\nexport const later = () => import('../judicator/run');\n",
    'store/keys.ts': "import { run } from '../judicator/run';\nexport const keys = run;\n",
  });
  const upward = report.violations.filter((v) => v.kind === 'upward').map((v) => v.message);
  assert.equal(upward.length, 2, formatReport(report));
  assert.ok(upward.some((m) => m.startsWith('common/time.ts:2 loads judicator/run.ts')), upward.join('\n'));
  assert.ok(upward.some((m) => m.startsWith('store/keys.ts:1 imports judicator/run.ts')), upward.join('\n'));
  // common/time.ts <-> judicator/run.ts is a circle as well.
  assert.ok(report.violations.some((v) => v.kind === 'cycle'));
});

test('roles never import each other; rooms of a shared floor may, one way only', () => {
  const report = check({
    'judicator/a.ts': "import { b } from '../executor/b';\nexport const a = b;\n",
    'executor/b.ts': 'export const b = 1;\n',
    'store/s.ts': "import { e } from '../etcd/e';\nexport const s = e;\n",
    'etcd/e.ts': 'export const e = 1;\n',
    'etcd/f.ts': "import { s } from '../store/s';\nexport const f = s;\n",
  });
  const kinds = report.violations.map((v) => v.kind).sort();
  assert.deepEqual(kinds, ['room-cycle', 'sideways'], formatReport(report));
  assert.match(report.violations.find((v) => v.kind === 'room-cycle')!.message, /etcd -> store -> etcd/);
});

test('a room on no floor, an import of nothing, and an exception no longer needed are violations', () => {
  const report = check({
    'misc/x.ts': "import { y } from './y';\nexport const x = y;\n",
    'common/ok.ts': 'export const ok = 1;\n',
  }, [{ from: 'common/ok.ts', to: 'misc/x.ts', why: 'was needed once' }]);
  assert.deepEqual(report.violations.map((v) => v.kind).sort(), ['no-floor', 'stale-exception', 'unresolved'], formatReport(report));
});

test('an allowed exception lets exactly its own arrow through', () => {
  const report = check({
    'judicator/run.ts': 'export const run = 1;\n',
    'common/a.ts': "import { run } from '../judicator/run';\nexport const a = run;\n",
    'common/b.ts': "import { run } from '../judicator/run';\nexport const b = run;\n",
  }, [{ from: 'common/a.ts', to: 'judicator/run.ts', why: 'test' }]);
  assert.deepEqual(
    report.violations.map((v) => v.message.split(':')[0]),
    ['common/b.ts'],
  );
});
