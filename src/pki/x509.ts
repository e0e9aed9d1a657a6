// The X.509 library (@peculiar/x509), for what only it does: making certificates, CSRs and CRLs. Loaded
// lazily (`await import('./x509')`) by the code that signs or makes a CSR, never at start-up: it costs
// about 15 MB of RSS and a quarter of a second, and reading certificates needs only Node's own
// X509Certificate (san.ts). Loaded the one way that works everywhere kv2 runs: its tsyringe dependency
// throws at import time unless a Reflect metadata polyfill is already installed, so the polyfill is
// imported first (imports run in order, in tsx and in the esbuild bundle alike), and every signature goes
// through Node's own webcrypto.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
