// Builds the web UI (src/gateway/ui/) into the files the executable embeds as `ui/<name>` assets:
// index.html, app.js (the pages, bundled and minified by esbuild), app.css and icon.svg. The gateway
// serves them under /res/; when kv2 runs from its sources it calls bundleUi() itself, in memory.
import fs from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';

export interface UiAsset {
  name: string;
  file: string;
  executable: boolean;
}

/** Files copied as they are, next to the bundled script. */
const STATIC_FILES = ['index.html', 'app.css', 'icon.svg'];

/** The UI's files by name, built in memory. */
export async function bundleUi(root: string): Promise<Map<string, Buffer>> {
  const dir = path.join(root, 'src/gateway/ui');
  const result = await esbuild.build({
    entryPoints: [path.join(dir, 'index.ts')],
    bundle: true,
    write: false,
    outfile: 'app.js',
    platform: 'browser',
    format: 'iife',
    // Browsers of the last few years, a phone's too.
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const files = new Map<string, Buffer>();
  for (const output of result.outputFiles) files.set(path.basename(output.path), Buffer.from(output.contents));
  for (const name of STATIC_FILES) files.set(name, fs.readFileSync(path.join(dir, name)));
  return files;
}

export async function buildUi(root: string, dist: string, log: (message: string) => void): Promise<UiAsset[]> {
  const files = await bundleUi(root);
  const out = path.join(dist, 'ui');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const assets: UiAsset[] = [];
  let total = 0;
  for (const [name, bytes] of files) {
    const file = path.join(out, name);
    fs.writeFileSync(file, bytes);
    total += bytes.length;
    assets.push({ name: `ui/${name}`, file, executable: false });
  }
  log(`web UI: ${assets.length} files, ${(total / 1024).toFixed(0)} KiB`);
  return assets;
}
