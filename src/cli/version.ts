// `kv2 --version`: kv2's version and where the programs it runs come from.
import { embeddedManifest, programSource } from '../common/assets';
import { VERSION } from '../common/version';

export function printVersion(): number {
  const manifest = embeddedManifest();
  process.stdout.write(`kv2 ${VERSION}\n`);
  process.stdout.write(`node ${process.version}${manifest ? `, built ${manifest.builtAt}` : ' (running from source)'}\n`);
  for (const program of ['etcd', 'etcdctl', 'mongod'] as const) {
    process.stdout.write(`${program}: ${programSource(program)}\n`);
  }
  return 0;
}
