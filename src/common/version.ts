// kv2's version, from package.json (inlined into the bundle by esbuild at build time).
import pkg from '../../package.json';

export const VERSION: string = pkg.version;
