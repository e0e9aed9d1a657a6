// `npm run build`: bundles kv2 with esbuild and makes the single executable `./kv2` with @yao-pkg/pkg in
// SEA mode from the local Node (pkg's downloads of Node binaries are not reachable everywhere), embedding
// etcd, etcdctl, the executor's step launcher (compiled here from C), optionally mongod, and the web UI
// as SEA assets.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import protobuf from 'protobufjs';
import { LAUNCHER_ASSET, compileLauncher } from '../src/executor/launcher-binary';
import { buildUi } from './ui';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// KV2_BUILD_OUTPUT builds elsewhere than ./kv2 (several builds side by side); tests take KV2_BINARY.
const output = process.env.KV2_BUILD_OUTPUT ? path.resolve(process.env.KV2_BUILD_OUTPUT) : path.join(root, 'kv2');
const dist = process.env.KV2_BUILD_OUTPUT ? `${output}.dist` : path.join(root, 'dist');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };

/**
 * The mongodb driver's optional helpers: kv2 does not use them, and they cannot be bundled. They are not
 * left `external` either: inside a single executable any require() of a non-builtin prints a warning, so
 * each becomes a module that throws "not found", which is what the driver expects of a missing option.
 */
const OPTIONAL_MISSING = [
  // debug's optional colour support (through mongodb-memory-server)
  'supports-color',
  'kerberos',
  'snappy',
  '@mongodb-js/zstd',
  'mongodb-client-encryption',
  'socks',
  'aws4',
  'gcp-metadata',
  '@aws-sdk/credential-providers',
  '@aws-sdk/credential-provider-node',
];

function missingOptionalPlugin(): esbuild.Plugin {
  const names = new Set(OPTIONAL_MISSING);
  return {
    name: 'missing-optional-dependencies',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => (names.has(args.path) ? { path: args.path, namespace: 'kv2-missing' } : undefined));
      build.onLoad({ filter: /.*/, namespace: 'kv2-missing' }, (args) => ({
        contents: `const e = new Error(${JSON.stringify(`Cannot find module '${args.path}' (not included in kv2)`)}); e.code = 'MODULE_NOT_FOUND'; throw e;`,
        loader: 'js',
      }));
    },
  };
}

function log(message: string): void {
  process.stdout.write(`[build] ${message}\n`);
}

/**
 * etcd3 loads its .proto files from disk next to its own source when it is imported; inside a single
 * executable there is no such file. The protos are compiled to JSON here and inlined in their place.
 */
function etcd3ProtoPlugin(): esbuild.Plugin {
  const protoFile = path.join(root, 'node_modules/etcd3/proto/rpc.proto');
  const json = JSON.stringify(new protobuf.Root().loadSync(protoFile, { keepCase: true }).toJSON());
  return {
    name: 'etcd3-inline-protos',
    setup(build) {
      build.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
        const code = await fs.promises.readFile(args.path, 'utf8');
        const pattern = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`,/;
        if (!pattern.test(code)) throw new Error('etcd3 no longer loads rpc.proto the way this build expects; update build/build.ts');
        return { contents: code.replace(pattern, `(0, proto_loader_1.fromJSON)(${json},`), loader: 'js' };
      });
    },
  };
}

async function bundle(): Promise<string> {
  const outfile = path.join(dist, 'kv2.cjs');
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'src/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: false,
    minifySyntax: true,
    // Whitespace too: V8 keeps each process's whole bundle source in memory.
    minifyWhitespace: true,
    // Non-ASCII text escaped: one such character makes V8 keep the whole source as a two-byte string.
    charset: 'ascii',
    legalComments: 'none',
    plugins: [etcd3ProtoPlugin(), missingOptionalPlugin()],
    logLevel: 'warning',
    // Some dependencies read import.meta.url only to find files we never load from disk.
    define: { 'import.meta.url': '"file:///kv2"' },
    metafile: true,
  });
  const bytes = fs.statSync(outfile).size;
  log(`bundle ${path.relative(root, outfile)}: ${(bytes / 1024 / 1024).toFixed(1)} MiB, ${Object.keys(result.metafile.inputs).length} inputs`);
  return outfile;
}

interface Asset {
  name: string;
  file: string;
  executable: boolean;
}

function requiredProgram(name: string, envVar: string, fallback: string, packages = "Debian's etcd-server and etcd-client packages"): string {
  const file = process.env[envVar] || fallback;
  if (!fs.existsSync(file)) {
    throw new Error(`${name} not found at ${file}: install ${packages} (build/prepare.sh build does), or set ${envVar}`);
  }
  return fs.realpathSync(file);
}

/** The executor's step launcher, compiled from its C source with the flags the sources-run uses. */
function buildLauncher(): Asset {
  const file = path.join(dist, 'kv2-step-launcher');
  compileLauncher(path.join(root, 'src/executor/step-launcher.c'), file);
  log(`step launcher ${path.relative(root, file)}: ${(fs.statSync(file).size / 1024).toFixed(0)} KiB`);
  return { name: LAUNCHER_ASSET, file, executable: true };
}

function collectAssets(uiFiles: Asset[]): Asset[] {
  const assets: Asset[] = [
    { name: 'bin/etcd', file: requiredProgram('etcd', 'KV2_ETCD_BINARY', '/usr/bin/etcd'), executable: true },
    { name: 'bin/etcdctl', file: requiredProgram('etcdctl', 'KV2_ETCDCTL_BINARY', '/usr/bin/etcdctl'), executable: true },
    // The task sandbox, for executors on machines without bubblewrap: 72 KiB, linked against glibc,
    // libcap, libselinux and libpcre2 only, which every Debian, Ubuntu and RHEL-like system has.
    { name: 'bin/bwrap', file: requiredProgram('bwrap', 'KV2_BWRAP_BINARY', '/usr/bin/bwrap', "Debian's bubblewrap package"), executable: true },
    buildLauncher(),
  ];
  const mongod = process.env.KV2_MONGOD_BINARY;
  if (mongod) {
    if (!fs.existsSync(mongod)) throw new Error(`KV2_MONGOD_BINARY names ${mongod}, which does not exist`);
    assets.push({ name: 'bin/mongod', file: fs.realpathSync(mongod), executable: true });
    log(`embedding mongod from ${mongod}`);
  } else {
    log('no KV2_MONGOD_BINARY: this build carries no mongod (the etcd store needs none)');
  }
  return [...assets, ...uiFiles];
}

function writeManifest(assets: Asset[]): string {
  const files: Record<string, { sha256: string; size: number; executable: boolean }> = {};
  for (const asset of assets) {
    const bytes = fs.readFileSync(asset.file);
    files[asset.name] = { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, executable: asset.executable };
  }
  const manifest = { version: pkg.version, builtAt: new Date().toISOString(), files };
  const file = path.join(dist, 'manifest.json');
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2));
  return file;
}

/**
 * pkg's SEA mode runs `npx postject` from a temporary directory, where npx cannot see this project's
 * postject and would try to download it. A one-line npx in front of PATH points it at ours.
 */
function npxShim(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-build-'));
  const postject = path.join(root, 'node_modules/.bin/postject');
  fs.writeFileSync(
    path.join(dir, 'npx'),
    `#!/bin/sh\nif [ "$1" = postject ]; then shift; exec "${postject}" "$@"; fi\nexec "${execFileSync('sh', ['-c', 'command -v npx'], { encoding: 'utf8' }).trim()}" "$@"\n`,
    { mode: 0o755 },
  );
  return dir;
}

async function makeExecutable(entry: string, assets: Asset[], manifest: string): Promise<void> {
  type Sea = (entry: string, options: object) => Promise<void>;
  const imported = (await import('@yao-pkg/pkg/lib-es5/sea.js')) as unknown as { default: Sea | { default: Sea } };
  // A CommonJS module with `exports.default`: Node's ESM loader may or may not unwrap it.
  const sea = typeof imported.default === 'function' ? imported.default : imported.default.default;
  const seaAssets: Record<string, string> = { 'manifest.json': manifest };
  for (const asset of assets) seaAssets[asset.name] = asset.file;
  const shim = npxShim();
  const previousPath = process.env.PATH;
  process.env.PATH = `${shim}:${previousPath}`;
  fs.rmSync(output, { force: true });
  try {
    await sea(entry, {
      targets: [{ nodeRange: `node${process.versions.node.split('.')[0]}`, platform: 'linux', arch: process.arch, output }],
      useLocalNode: true,
      seaConfig: { disableExperimentalSEAWarning: true, useCodeCache: true, assets: seaAssets },
    });
  } finally {
    process.env.PATH = previousPath;
    fs.rmSync(shim, { recursive: true, force: true });
  }
  // pkg reports a failed injection only as a log line; check the result ourselves.
  if (!fs.existsSync(output)) throw new Error('pkg did not produce ./kv2 (see its output above)');
  fs.chmodSync(output, 0o755);
  const version = execFileSync(output, ['--version'], { encoding: 'utf8', env: { ...process.env, KV2_ETCD_BINARY: '' } });
  if (!version.includes(pkg.version) || !version.includes('etcd: embedded')) {
    throw new Error(`./kv2 --version printed something unexpected:\n${version}`);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  fs.mkdirSync(dist, { recursive: true });
  const entry = await bundle();
  const uiFiles = await buildUi(root, dist, log);
  const assets = collectAssets(uiFiles);
  const manifest = writeManifest(assets);
  await makeExecutable(entry, assets, manifest);
  const size = fs.statSync(output).size;
  log(`./kv2 built in ${((Date.now() - started) / 1000).toFixed(1)} s: ${(size / 1024 / 1024).toFixed(1)} MiB, ${assets.length} embedded files`);
}

main().catch((error: unknown) => {
  process.stderr.write(`[build] failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
