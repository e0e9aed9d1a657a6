// `kv2 --version`: kv2's version and where the programs it runs come from.
import { embeddedManifest, findOnPath, programSource } from '../common/assets';
import { VERSION } from '../common/version';

export function printVersion(): number {
  const manifest = embeddedManifest();
  process.stdout.write(`kv2 ${VERSION}\n`);
  process.stdout.write(`node ${process.version}${manifest ? `, built ${manifest.builtAt}` : ' (running from source)'}\n`);
  for (const program of ['etcd', 'etcdctl', 'mongod'] as const) {
    process.stdout.write(`${program}: ${programSource(program)}\n`);
  }
  // The task sandbox: the machine's own bwrap first (it gets the distribution's fixes), the embedded one else.
  const embeddedBwrap = manifest?.files['bin/bwrap'] ? ' (the embedded one stands by)' : '';
  const bwrap = process.env.KV2_BWRAP_BINARY ? 'environment' : findOnPath('bwrap') ? `system${embeddedBwrap}` : programSource('bwrap');
  process.stdout.write(`bwrap: ${bwrap}\n`);
  return 0;
}
