// A process that claims mongodb/init and then hangs, for the test where the claimer dies (SIGKILL) before
// initiating: `node --import tsx mongodb-init-claimer.ts <etcd-endpoint> <key> <host> <ttl>`. Prints
// "claimed" or "not claimed" on stdout.
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../src/common/logging';
import { InitMarker } from '../../src/mongodb/init-marker';

const [endpoint, key, host, ttl] = process.argv.slice(2);
const logger = createLogger('claimer', { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'error' });
const client = new Etcd3({ hosts: [endpoint!], dialTimeout: 2_000 });
const claim = await new InitMarker(() => client, key!, logger).claim(host!, Number(ttl));
process.stdout.write(claim ? 'claimed\n' : 'not claimed\n');
// Hold the claim (its lease kept alive) until killed.
setInterval(() => undefined, 60_000);
