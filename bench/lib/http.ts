// A small HTTP/1.1 client on keep-alive sockets for the kv2 gateway API: lighter on the benchmark
// machine's CPU than fetch, which matters when client and system share two cores.
import http from 'node:http';

export class HttpClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly base: URL,
    maxSockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request(method: 'GET' | 'POST', path: string, body?: string, contentType?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {};
      if (body !== undefined) {
        headers['content-type'] = contentType ?? 'application/x-www-form-urlencoded';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = http.request(
        { host: this.base.hostname, port: this.base.port, method, path, headers, agent: this.agent, timeout: 60_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} got no answer within 60 s`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  async json<T>(method: 'GET' | 'POST', path: string, body?: string): Promise<T> {
    const answer = await this.request(method, path, body);
    try {
      return JSON.parse(answer.body) as T;
    } catch {
      throw new Error(`${method} ${path}: HTTP ${answer.status}, not JSON: ${answer.body.slice(0, 200)}`);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
