// The import graph of src/ and the house's floors: every import (static, `export ... from`, dynamic
// `import()`, type-only too) between kv2's files, checked for circles and for arrows that point up a floor.
// `npm run check:imports` prints the summary and exits 1 on any violation; test/unit/import-graph.test.ts
// runs the same check.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The floors, top to bottom. A file may import from its own room, and from any room on a lower floor.
 * Rooms on one floor may lean on each other one way only (no circle between rooms), unless the floor
 * keeps them apart: the roles never import each other. A top-level file of src/ is a room of its own,
 * named by its file name.
 */
export interface Floor {
  name: string;
  rooms: readonly string[];
  /** Rooms of this floor must not import each other at all. */
  apart?: boolean;
}

export const FLOORS: readonly Floor[] = [
  { name: 'entry', rooms: ['main.ts'] },
  { name: 'cli', rooms: ['cli'] },
  // Operations on a whole cluster (backup, restore, swarm): they read the role dirs boot lays out.
  { name: 'ops', rooms: ['ops'] },
  { name: 'boot', rooms: ['boot'] },
  { name: 'roles', rooms: ['judicator', 'executor', 'gateway'], apart: true },
  { name: 'services', rooms: ['rpc', 'store', 'etcd', 'mongodb'] },
  // The cluster's identity (CA, certificates, join tokens): what the services' TLS stands on.
  { name: 'identity', rooms: ['pki'] },
  { name: 'task', rooms: ['task'] },
  { name: 'common', rooms: ['common'] },
];

/** An arrow the floors forbid but that is accepted, and why. Keep it empty; a stale entry is a violation. */
export interface AllowedEdge {
  from: string;
  to: string;
  why: string;
}

export const ALLOWED: readonly AllowedEdge[] = [];

export interface Edge {
  /** Paths relative to the root, with their extension. */
  from: string;
  to: string;
  line: number;
  dynamic: boolean;
}

export interface ImportGraph {
  files: string[];
  edges: Edge[];
  /** Imports of a relative path that names no file. */
  unresolved: { from: string; specifier: string; line: number }[];
}

export interface Violation {
  kind: 'cycle' | 'upward' | 'sideways' | 'room-cycle' | 'no-floor' | 'unresolved' | 'stale-exception';
  message: string;
}

export interface Report {
  graph: ImportGraph;
  violations: Violation[];
  /** Rooms with their floor and how many files each holds. */
  rooms: { room: string; floor: string; files: number }[];
}

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return sourceFiles(full);
      return /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [full] : [];
    })
    .sort();
}

function resolveImport(from: string, specifier: string): string | undefined {
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = [base, `${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts'), base.replace(/\.js$/, '.ts')];
  return candidates.find((candidate) => fs.existsSync(candidate) && fs.statSync(candidate).isFile());
}

/** Every relative import of every .ts file under `root` (a target outside `root`, package.json say, is left out). */
export function readImportGraph(root: string): ImportGraph {
  const files = sourceFiles(root);
  const edges: Edge[] = [];
  const unresolved: ImportGraph['unresolved'] = [];
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false);
    const from = path.relative(root, file);
    const add = (specifier: string, node: ts.Node, dynamic: boolean) => {
      if (!specifier.startsWith('.')) return; // a package or node: builtin
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      const target = resolveImport(file, specifier);
      if (!target) unresolved.push({ from, specifier, line });
      else if (!path.relative(root, target).startsWith('..')) edges.push({ from, to: path.relative(root, target), line, dynamic });
    };
    const visit = (node: ts.Node) => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        add(node.moduleSpecifier.text, node, false);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        const [argument] = node.arguments;
        if (argument && ts.isStringLiteralLike(argument)) add(argument.text, node, true);
      } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
        add(node.argument.literal.text, node, false);
      } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
        add(node.moduleReference.expression.text, node, false);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { files: files.map((file) => path.relative(root, file)), edges, unresolved };
}

/** The room of a file: its top folder under the root, or the file name for a top-level file. */
export function roomOf(file: string): string {
  return file.split(path.sep)[0]!;
}

/** Circles among `nodes` (one path each, found by Tarjan's strongly connected components). */
export function findCycles(nodes: readonly string[], next: (node: string) => readonly string[]): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (node: string) => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const target of next(node)) {
      if (!index.has(target)) {
        connect(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node)!, index.get(target)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || next(node).includes(node)) components.push(component);
    }
  };
  for (const node of nodes) if (!index.has(node)) connect(node);
  // One concrete circle per component: the shortest way from its first node back to itself.
  return components.map((component) => {
    const inside = new Set(component);
    const start = [...component].sort()[0]!;
    const previous = new Map<string, string>();
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      const node = queue[i]!;
      for (const target of next(node)) {
        if (!inside.has(target)) continue;
        if (target === start) {
          const cycle = [node];
          while (cycle[0] !== start) cycle.unshift(previous.get(cycle[0]!)!);
          return [...cycle, start];
        }
        if (!previous.has(target)) {
          previous.set(target, node);
          queue.push(target);
        }
      }
    }
    return [start, start];
  });
}

/** Checks the graph of `root` against the floors. */
export function checkImports(root: string, floors: readonly Floor[] = FLOORS, allowed: readonly AllowedEdge[] = ALLOWED): Report {
  const graph = readImportGraph(root);
  const violations: Violation[] = [];
  const floorOf = new Map<string, number>();
  floors.forEach((floor, i) => floor.rooms.forEach((room) => floorOf.set(room, i)));

  const roomFiles = new Map<string, number>();
  for (const file of graph.files) roomFiles.set(roomOf(file), (roomFiles.get(roomOf(file)) ?? 0) + 1);
  for (const room of roomFiles.keys()) {
    if (!floorOf.has(room)) violations.push({ kind: 'no-floor', message: `${room} is on no floor: add it to FLOORS in build/import-graph.ts` });
  }
  for (const miss of graph.unresolved) {
    violations.push({ kind: 'unresolved', message: `${miss.from}:${miss.line} imports ${miss.specifier}, which names no file` });
  }

  const targets = new Map<string, string[]>();
  for (const edge of graph.edges) targets.set(edge.from, [...(targets.get(edge.from) ?? []), edge.to]);
  for (const cycle of findCycles(graph.files, (file) => targets.get(file) ?? [])) {
    violations.push({ kind: 'cycle', message: `import circle: ${cycle.join(' -> ')}` });
  }

  const used = new Set<AllowedEdge>();
  const sideways = new Map<string, Set<string>>();
  for (const edge of graph.edges) {
    const fromRoom = roomOf(edge.from);
    const toRoom = roomOf(edge.to);
    if (fromRoom === toRoom) continue;
    const fromFloor = floorOf.get(fromRoom);
    const toFloor = floorOf.get(toRoom);
    if (fromFloor === undefined || toFloor === undefined) continue;
    let problem: Violation | undefined;
    const how = `${edge.from}:${edge.line} ${edge.dynamic ? 'loads' : 'imports'} ${edge.to}`;
    if (fromFloor > toFloor) {
      problem = { kind: 'upward', message: `${how}: ${fromRoom} (floor ${floors[fromFloor]!.name}) must not reach up to ${toRoom} (floor ${floors[toFloor]!.name})` };
    } else if (fromFloor === toFloor && floors[fromFloor]!.apart) {
      problem = { kind: 'sideways', message: `${how}: the ${floors[fromFloor]!.name} ${fromRoom} and ${toRoom} must not import each other` };
    } else if (fromFloor === toFloor) {
      sideways.set(fromRoom, (sideways.get(fromRoom) ?? new Set()).add(toRoom));
    }
    if (!problem) continue;
    const exception = allowed.find((a) => a.from === edge.from && a.to === edge.to);
    if (exception) used.add(exception);
    else violations.push(problem);
  }
  for (const cycle of findCycles([...sideways.keys()].sort(), (room) => [...(sideways.get(room) ?? [])])) {
    violations.push({ kind: 'room-cycle', message: `rooms of one floor lean on each other both ways: ${cycle.join(' -> ')}` });
  }
  for (const exception of allowed) {
    if (!used.has(exception)) violations.push({ kind: 'stale-exception', message: `allowed exception ${exception.from} -> ${exception.to} is no longer needed: remove it` });
  }

  const rooms = [...roomFiles.entries()]
    .map(([room, files]) => ({ room, floor: floorOf.has(room) ? floors[floorOf.get(room)!]!.name : '(none)', files }))
    .sort((a, b) => (floorOf.get(a.room) ?? 99) - (floorOf.get(b.room) ?? 99) || a.room.localeCompare(b.room));
  return { graph, violations, rooms };
}

/** The summary `npm run check:imports` prints. */
export function formatReport(report: Report): string {
  const lines: string[] = [];
  const dynamic = report.graph.edges.filter((e) => e.dynamic).length;
  lines.push(`src/: ${report.graph.files.length} files, ${report.graph.edges.length} imports (${dynamic} dynamic)`);
  const between = new Map<string, number>();
  for (const edge of report.graph.edges) {
    const key = `${roomOf(edge.from)} -> ${roomOf(edge.to)}`;
    if (roomOf(edge.from) !== roomOf(edge.to)) between.set(key, (between.get(key) ?? 0) + 1);
  }
  let floor = '';
  for (const { room, floor: name, files } of report.rooms) {
    if (name !== floor) lines.push(`floor ${name}`);
    floor = name;
    const arrows = [...between.entries()].filter(([key]) => key.startsWith(`${room} -> `)).map(([key, n]) => `${key.slice(room.length + 4)} (${n})`);
    lines.push(`  ${room} (${files} files)${arrows.length ? ` -> ${arrows.join(', ')}` : ''}`);
  }
  if (report.violations.length === 0) lines.push('no import circle, no arrow up a floor, no role importing another');
  else {
    lines.push(`${report.violations.length} violation(s):`);
    for (const violation of report.violations) lines.push(`  [${violation.kind}] ${violation.message}`);
  }
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const report = checkImports(root);
  process.stdout.write(`${formatReport(report)}\n`);
  process.exit(report.violations.length ? 1 : 0);
}
