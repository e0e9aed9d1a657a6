// The server half of bench/tls-cost.ts, in its own process so the CPU it spends is measured apart from
// the client's: a kept-alive HTTP/1.1 server answering every POST with a small JSON body, as a judicator
// answers an RPC that has nothing to hand out. TLS_COST_KIND=http, or https with mutual TLS from the
// identity in TLS_COST_IDENTITY (a judicator's directory, src/pki). Prints `ready <port>`; answers the
// IPC message `cpu` with its process.cpuUsage().
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { LiveIdentity } from '../../src/pki/live-identity';
import { peerIdentity } from '../../src/pki/peer-identity';

const kind = process.env.TLS_COST_KIND;
const answer = JSON.stringify({ result: 0, cancel: [], assign: [] });

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    // Over TLS every request asks who is calling, as the RPC will to enforce roles.
    if (kind === 'https' && !peerIdentity(req.socket as TLSSocket)) {
      res.writeHead(401).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
}

const server =
  kind === 'https'
    ? https.createServer(LiveIdentity.load(process.env.TLS_COST_IDENTITY!).serverOptions({ requireClientCertificate: true }), handle)
    : http.createServer(handle);
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`));
process.on('message', (message) => {
  if (message === 'cpu') process.send!(process.cpuUsage());
});
process.on('disconnect', () => process.exit(0));
