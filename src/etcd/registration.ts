// A key that says "this node is alive" (judicator/service/<name>, mongodb/register/<name>): kept
// under a lease while the node runs, put back when the lease is lost (etcd restarted, network cut), and
// deleted at once on a graceful stop by revoking the lease.
import type { Etcd3, Lease } from 'etcd3';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';

export interface RegistrationOptions {
  key: string;
  /** The value, read again at each (re)registration. */
  value: () => string;
  /** Lease TTL in seconds: how long the key outlives a node that dies without a word. */
  ttl: number;
  /** Milliseconds between attempts while etcd cannot be reached. */
  retryMs?: number;
}

export class LeasedRegistration {
  private lease: Lease | undefined;
  private registered = false;

  constructor(
    private readonly client: () => Etcd3,
    private readonly options: RegistrationOptions,
    private readonly logger: Logger,
  ) {}

  get isRegistered(): boolean {
    return this.registered;
  }

  /** Keeps the key registered until `signal` aborts, then revokes the lease (deleting the key). */
  async run(signal: AbortSignal): Promise<void> {
    const retryMs = this.options.retryMs ?? 1_000;
    while (!signal.aborted) {
      const lost = new AbortController();
      try {
        // Registering waits for etcd; a shutdown must not wait with it.
        await abortable(this.register(lost), signal);
        if (signal.aborted) break;
        await new Promise<void>((resolve) => {
          const done = () => resolve();
          signal.addEventListener('abort', done, { once: true });
          lost.signal.addEventListener('abort', done, { once: true });
        });
      } catch (error) {
        this.registered = false;
        this.logger.warn({ key: this.options.key, err: describeError(error) }, `could not register ${this.options.key}; retrying`);
        await sleep(retryMs, signal);
      }
    }
    await this.unregister();
  }

  private async register(lost: AbortController): Promise<void> {
    // A lost lease is gone already (etcd expired it); stop its keep-alives and forget it.
    this.lease?.release();
    const lease = this.client().lease(this.options.ttl, { autoKeepAlive: true });
    this.lease = lease;
    lease.on('lost', (error) => {
      this.registered = false;
      this.logger.warn({ key: this.options.key, err: describeError(error) }, `lease of ${this.options.key} lost; registering again`);
      lost.abort();
    });
    await lease.put(this.options.key).value(this.options.value());
    this.registered = true;
    this.logger.info({ key: this.options.key, ttl: this.options.ttl }, `registered ${this.options.key}`);
  }

  private async unregister(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    this.registered = false;
    if (!lease) return;
    try {
      await lease.revoke({ deadline: Date.now() + 3_000 });
      this.logger.info({ key: this.options.key }, `unregistered ${this.options.key}`);
    } catch (error) {
      this.logger.warn({ key: this.options.key, err: describeError(error) }, `could not unregister ${this.options.key}; it expires with its lease`);
    }
  }
}

/** Resolves when `promise` settles or `signal` aborts, whichever comes first. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
