// What etcd needs of the cluster PKI: the flags that make a member serve its client and peer ports over
// mutual TLS with certificates of the cluster CA only (and peers that are judicators only), and the
// credentials an etcd client (src/etcd/client.ts `tls`) presents.
import type { NodeFiles } from './identity-files';
import { identityPaths } from './identity-files';

/**
 * etcd 3.4 flags for a judicator whose identity is in `dir`. Its certificate serves both ports (it has
 * serverAuth and clientAuth, and its host names as SANs); node.pem is both the cert and the key file.
 * etcd reads the certificate and the CRL at every handshake, so renewals and revocations need no restart.
 * With `crl`, the file must exist before etcd starts (write an empty CRL first): etcd refuses every
 * connection while it cannot read it. The URLs given to etcd must be https.
 */
export function etcdTlsFlags(dir: string, options: { crl?: boolean } = {}): string[] {
  const paths = identityPaths(dir);
  const flags = [
    '--cert-file', paths.node,
    '--key-file', paths.node,
    '--trusted-ca-file', paths.caCert,
    '--client-cert-auth',
    '--peer-cert-file', paths.node,
    '--peer-key-file', paths.node,
    '--peer-trusted-ca-file', paths.caCert,
    '--peer-client-cert-auth',
    // A peer's certificate must be a judicator's (its CN is its role): an executor cannot join the raft.
    '--peer-cert-allowed-cn', 'judicator',
  ];
  if (options.crl) flags.push('--client-crl-file', paths.crl, '--peer-crl-file', paths.crl);
  return flags;
}

/** The `tls` option of createEtcdClient for a node's identity. */
export function etcdClientTls(files: NodeFiles): { ca: string; cert: string; key: string } {
  return { ca: files.caPem, cert: files.certPem, key: files.keyPem };
}
