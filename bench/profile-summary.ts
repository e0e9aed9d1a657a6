// `npx tsx bench/profile-summary.ts <file.cpuprofile>...` (a profiling aid): where a V8 CPU profile's time
// went — total sampled time, idle share, and the top functions by self time and by package/file — for
// the profiles `BENCH_KV2_PROFILE=<dir> npm run bench` leaves behind (one per kv2 process).
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const TOP = Number(process.env.PROFILE_TOP ?? 25);
/** PROFILE_CALLERS=<function name>: also list the call paths that lead to it, by self time. */
const CALLERS = process.env.PROFILE_CALLERS;
/** How many frames of each call path to show. */
const CALLER_DEPTH = Number(process.env.PROFILE_CALLER_DEPTH ?? 6);

/** node_modules/<package> or src/<dir>/<file>, or node's own internals. */
function bucket(url: string): string {
  if (!url) return '(native/V8)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  const src = /\/(src|bench|test)\/(.*)$/.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  if (url.startsWith('node:')) return url;
  return path.basename(url);
}

function summarize(file: string): void {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  let idle = 0;
  const byFunction = new Map<string, number>();
  const byBucket = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const name = `${frame.functionName || '(anonymous)'} ${bucket(frame.url)}:${frame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const b = frame.functionName === '(garbage collector)' ? '(garbage collector)' : frame.functionName === '(program)' ? '(program)' : bucket(frame.url);
    byBucket.set(b, (byBucket.get(b) ?? 0) + us);
  }
  const busy = total - idle;
  const ms = (us: number) => (us / 1000).toFixed(0).padStart(7);
  const pct = (us: number) => `${((100 * us) / Math.max(busy, 1)).toFixed(1).padStart(5)}%`;
  console.log(`\n${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (${((100 * busy) / Math.max(total, 1)).toFixed(0)}%)`);
  console.log('  by package / file (self time, share of busy):');
  for (const [name, us] of [...byBucket].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`  ${ms(us)} ms ${pct(us)}  ${name}`);
  console.log('  by function:');
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`  ${ms(us)} ms ${pct(us)}  ${name}`);
  if (CALLERS) {
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const paths = new Map<string, number>();
    for (const [id, us] of self) {
      if (byId.get(id)!.callFrame.functionName !== CALLERS) continue;
      const chain: string[] = [];
      for (let p = parent.get(id); p !== undefined && chain.length < CALLER_DEPTH; p = parent.get(p)) {
        const f = byId.get(p)!.callFrame;
        chain.push(`${f.functionName || '(anonymous)'}@${bucket(f.url)}:${f.lineNumber + 1}`);
      }
      const key = chain.join(' < ');
      paths.set(key, (paths.get(key) ?? 0) + us);
    }
    console.log(`  callers of ${CALLERS}:`);
    for (const [key, us] of [...paths].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`  ${ms(us)} ms ${pct(us)}  ${key}`);
  }
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: npx tsx bench/profile-summary.ts <file.cpuprofile>...');
  process.exit(2);
}
for (const file of files) summarize(file);
