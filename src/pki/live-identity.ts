// A node's identity as its TLS servers and clients use it: loaded from its directory, reloaded when the
// files change (a renewal, by this process or by another module of the same node), and handed to
// whoever listens (a server swaps its secure context with setSecureContext; a client makes a new agent).
// Connections already open keep the certificate they were made with; new ones take the new one.
import fs from 'node:fs';
import type tls from 'node:tls';
import { ConfigError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import type { CertIdentity } from './identity';
import { identityPaths, readNodeFiles, type NodeFiles } from './identity-files';
import { judicatorServerCheck } from './peer-identity';

/** How often a node looks whether its identity files changed, ms. */
export const IDENTITY_RELOAD_CHECK_MS = 30_000;

/** How often to look whether the files changed, ms: every IDENTITY_RELOAD_CHECK_MS, or more often for a short-lived certificate. */
export function identityReloadInterval(cert: Pick<CertIdentity, 'notBefore' | 'notAfter'>): number {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return Math.max(1_000, Math.min(IDENTITY_RELOAD_CHECK_MS, Math.floor(life / 20)));
}
/** TLS 1.2 is the oldest etcd 3.4 and Node agree on; kv2 offers nothing older. */
export const MIN_TLS_VERSION = 'TLSv1.2' as const;

function stamp(dir: string): string {
  const paths = identityPaths(dir);
  return [paths.node, paths.caCert]
    .map((file) => {
      try {
        const s = fs.statSync(file);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

export class LiveIdentity {
  private readonly listeners = new Set<(files: NodeFiles) => void>();
  private lastStamp: string;

  private constructor(
    readonly dir: string,
    private files: NodeFiles,
    private readonly logger?: Logger,
  ) {
    this.lastStamp = stamp(dir);
  }

  /** The identity in `dir`; a ConfigError when there is none (the node must join first) or it is broken. */
  static load(dir: string, logger?: Logger): LiveIdentity {
    const files = readNodeFiles(dir);
    if (!files) throw new ConfigError(`no cluster identity in ${dir}: this node has not joined a cluster (no ca.crt or node.pem)`);
    return new LiveIdentity(dir, files, logger);
  }

  get current(): NodeFiles {
    return this.files;
  }

  get identity(): CertIdentity {
    return this.files.identity;
  }

  /** Key, certificate chain (node then CA, so a joining node can find the CA it pins) and the CA to trust. */
  contextOptions(): tls.SecureContextOptions {
    return { key: this.files.keyPem, cert: `${this.files.certPem.trimEnd()}\n${this.files.caPem.trimEnd()}\n`, ca: this.files.caPem, minVersion: MIN_TLS_VERSION };
  }

  /**
   * Options of a TLS server of this node. `requireClientCertificate: false` is for a port that also takes
   * joins (no certificate yet): the handshake then succeeds without one and each route decides, with
   * peerIdentity(), whether it needs one.
   */
  serverOptions(options: { requireClientCertificate: boolean }): tls.TlsOptions {
    return { ...this.contextOptions(), requestCert: true, rejectUnauthorized: options.requireClientCertificate };
  }

  /** Options of a TLS client of a judicator: this node's certificate, the cluster CA only, a judicator's role required. */
  clientOptions(): tls.ConnectionOptions {
    return {
      key: this.files.keyPem,
      cert: this.files.certPem,
      ca: this.files.caPem,
      minVersion: MIN_TLS_VERSION,
      rejectUnauthorized: true,
      checkServerIdentity: judicatorServerCheck,
    };
  }

  onChange(listener: (files: NodeFiles) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Keeps `server`'s certificate current: new handshakes use the new one, open connections go on. */
  attachServer(server: tls.Server): () => void {
    return this.onChange(() => server.setSecureContext(this.contextOptions()));
  }

  /**
   * Reads the files again; true if the certificate changed (listeners were told). A directory that stops
   * making sense keeps the old identity in use and says so in the log: it is still valid for a while.
   */
  reload(): boolean {
    this.lastStamp = stamp(this.dir);
    let files: NodeFiles | undefined;
    try {
      files = readNodeFiles(this.dir);
    } catch (error) {
      this.logger?.error({ dir: this.dir, err: describeError(error) }, 'identity files changed but cannot be used; keeping the current certificate');
      return false;
    }
    if (!files) {
      this.logger?.error({ dir: this.dir }, 'identity files disappeared; keeping the current certificate in memory');
      return false;
    }
    if (files.certPem === this.files.certPem && files.caPem === this.files.caPem) return false;
    const previous = this.files.identity;
    this.files = files;
    this.logger?.info(
      { previousSerial: previous.serial, serial: files.identity.serial, notAfter: files.identity.notAfter.toISOString() },
      'loaded a new certificate; new connections use it',
    );
    for (const listener of this.listeners) listener(files);
    return true;
  }

  /** Reloads whenever the files change, until `signal` aborts (a cheap stat every `intervalMs`). */
  async watch(signal: AbortSignal, intervalMs: number = IDENTITY_RELOAD_CHECK_MS): Promise<void> {
    while (!signal.aborted) {
      await sleep(intervalMs, signal);
      if (signal.aborted) break;
      if (stamp(this.dir) !== this.lastStamp) this.reload();
    }
  }
}
