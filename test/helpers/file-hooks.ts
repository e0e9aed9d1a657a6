// Cleanups that run when the whole test file is done, newest first: for nodes started in a before() that
// every test of the file shares (a test's own `t.after` would stop them when that test ends).
import { after } from 'node:test';

type Hooks = { after: (fn: () => unknown) => void };

export function fileHooks(): Hooks {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  return { after: (fn) => void cleanups.push(fn) };
}
