// Where the web UI's files come from: a directory named in the config (ui_dir) or by KV2_UI_DIR, the
// copies embedded in the single executable (`ui/<path>` assets), or, when kv2 runs from its sources,
// the UI bundled on the fly by build/ui.ts (esbuild, in memory, once).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describeError } from '../common/errors';
import { embeddedManifest, readEmbedded } from '../common/assets';
import type { Logger } from '../common/logging';

export interface UiFiles {
  /** The bytes of `name` (`index.html`, `app.js`, ...), or undefined when there is no such file. */
  get(name: string): Promise<Buffer | undefined>;
}

const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

function fromDirectory(dir: string): UiFiles {
  return {
    async get(name) {
      if (!SAFE_NAME.test(name)) return undefined;
      try {
        return await fs.promises.readFile(path.join(dir, name));
      } catch {
        return undefined;
      }
    },
  };
}

function fromEmbedded(): UiFiles {
  return { get: async (name) => (SAFE_NAME.test(name) ? readEmbedded(`ui/${name}`) : undefined) };
}

/** The repository root when running from sources (src/gateway/ -> ../..). */
function sourceRoot(): string | undefined {
  try {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
    return fs.existsSync(path.join(root, 'build', 'ui.ts')) ? root : undefined;
  } catch {
    return undefined;
  }
}

function builtOnTheFly(root: string, logger: Logger): UiFiles {
  let built: Promise<Map<string, Buffer>> | undefined;
  const build = async () => {
    // A path computed at run time: the executable's bundle must not pull in build/ (or esbuild).
    const modulePath = pathToFileURL(path.join(root, 'build', 'ui.ts')).href;
    const module = (await import(modulePath)) as { bundleUi(root: string): Promise<Map<string, Buffer>> };
    const files = await module.bundleUi(root);
    logger.info({ files: [...files.keys()] }, 'built the web UI from its sources');
    return files;
  };
  return {
    async get(name) {
      built ??= build().catch((error) => {
        built = undefined;
        logger.error({ err: describeError(error) }, 'cannot build the web UI from its sources');
        return new Map<string, Buffer>();
      });
      return (await built).get(name);
    },
  };
}

export function uiFiles(options: { dir?: string | null; logger: Logger }): UiFiles {
  const dir = options.dir || process.env.KV2_UI_DIR;
  if (dir) return fromDirectory(path.resolve(dir));
  if (embeddedManifest()?.files['ui/index.html']) return fromEmbedded();
  const root = sourceRoot();
  if (root) return builtOnTheFly(root, options.logger);
  return { get: async () => undefined };
}
