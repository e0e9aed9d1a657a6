// Builds the web UI (src/gateway/ui/) into files the executable embeds as `ui/<path>` assets.
// The UI arrives with the web-UI issue; until then there is nothing to build.
import fs from 'node:fs';
import path from 'node:path';

export interface UiAsset {
  name: string;
  file: string;
  executable: boolean;
}

export async function buildUi(root: string, dist: string, log: (message: string) => void): Promise<UiAsset[]> {
  const entry = path.join(root, 'src/gateway/ui/index.tsx');
  if (!fs.existsSync(entry)) {
    log('no web UI sources yet; nothing to embed');
    return [];
  }
  throw new Error(`building ${path.relative(root, entry)} is not implemented yet`);
}
