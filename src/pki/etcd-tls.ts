// What etcd needs of the cluster PKI: the flags that make a member serve its client and peer ports over
// mutual TLS with certificates of the cluster CA only, and of judicators only, and the credentials an
// etcd client (src/etcd/client.ts `tls`) presents. Only judicators talk to etcd: an executor's or a
// gateway's certificate (or an admin's) is refused at the handshake, so a stolen one cannot write a task.
import { LOOPBACK_HOSTS } from './hosts';
import type { NodeFiles } from './identity-files';
import { identityPaths } from './identity-files';

/**
 * The DNS name etcd requires of a client certificate (`--client-cert-allowed-hostname`). The CA gives host
 * names to judicator certificates alone, and every judicator certificate carries `localhost`, so this
 * admits exactly the judicators. (etcd 3.4 has no client CN check; its RBAC would make the backups' private
 * etcd need the cluster's credentials. One cost: etcd's built-in JSON gateway, which dials its own port
 * without checking the server's certificate, cannot pass this check; kv2 speaks gRPC and never uses it.)
 */
export const ETCD_CLIENT_HOSTNAME = LOOPBACK_HOSTS[2];

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
    '--client-cert-allowed-hostname', ETCD_CLIENT_HOSTNAME,
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
