// What the etcd module runs with (config/etcd.json, less the log section boot adds): the member's name,
// addresses, data dirs, how it finds its cluster, its limits and timings. Rendered from the flags by
// boot/modules/etcd.ts; validated by this schema every time the module starts.
import { z } from 'zod';
import { nodeNameField, portField } from '../common/config-fields';

/**
 * How this member finds its cluster on a start with no data (a member with data restarts on it):
 * - independent: found a new one-member cluster (the judicator default);
 * - init: with `member`, a static bootstrap; without, and with data present, force a new one-member
 *   cluster from that data (the maintenance page's disaster recovery);
 * - join: join the cluster reachable at one of `client` (comma-separated client URLs); a list that names
 *   this member too lets several members start at once: the lowest URL founds the cluster;
 * - service: docker swarm, the candidates are the addresses of DNS `tasks.<service>`;
 * - judicators: join the cluster of the judicators whose RPC answers at one of `addresses` (host:port):
 *   they say where their etcd members are (what `kv2 judicator --join` does).
 */
export const clusterSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('independent') }),
  z.object({ type: z.literal('init'), member: z.string().min(1).optional() }),
  z.object({ type: z.literal('join'), client: z.string().min(1) }),
  z.object({ type: z.literal('service'), service: z.string().min(1), client_port: portField }),
  z.object({ type: z.literal('judicators'), addresses: z.array(z.string().min(1)).min(1) }),
]);
export type ClusterMode = z.infer<typeof clusterSchema>;

export const etcdConfigSchema = z.object({
  /** Path of the etcd binary; null means the one embedded in kv2 (or the system's). */
  exe: z.string().min(1).nullable(),
  etcdctl: z.string().min(1).nullable(),
  name: nodeNameField,
  data_dir: z.string().min(1),
  data_init_dir: z.string().min(1),
  /** The node's cluster identity (CA, its certificate and key, the CRL), relative to the role dir. */
  identity_dir: z.string().min(1),
  listen: z.object({ address: z.string().min(1), peer_port: portField, client_port: portField }),
  advertise: z.object({ address: z.string().min(1), peer_port: portField, client_port: portField }),
  cluster: clusterSchema,
  strict_reconfig: z.boolean(),
  max_request_bytes: z.number().int().positive(),
  quota_backend_bytes: z.number().int().positive(),
  /** Hours of key history etcd keeps before compacting. */
  compaction_retention_hours: z.number().int().min(0),
  health: z.object({
    /** Seconds between liveness checks of the running etcd. */
    interval: z.number().positive(),
    /** Consecutive failed checks before etcd is restarted. */
    failures: z.number().int().min(1),
    /** Seconds etcd gets to answer after it starts (a joining member copies the data first). */
    start_timeout: z.number().positive(),
  }),
  join: z.object({
    /** Seconds to keep trying to join (or to find a cluster) before the module gives up and restarts. */
    timeout: z.number().positive(),
    /** TTL in seconds of the join lock's lease: a joiner that dies frees the lock this fast. */
    lock_ttl: z.number().int().min(5),
  }),
  /** Seconds etcd gets to stop after SIGTERM before it is killed. */
  stop_timeout: z.number().positive(),
  prefix: z.string().min(1),
});
export type EtcdConfig = z.infer<typeof etcdConfigSchema>;

/** The host local processes use to reach a server listening on `address`. */
export function localHost(address: string): string {
  return address === '0.0.0.0' || address === '::' || address === 'localhost' ? '127.0.0.1' : address;
}

/** The URL local processes use to reach this member's client port (always TLS). */
export function localClientUrl(config: { listen: Pick<EtcdConfig['listen'], 'address' | 'client_port'> }): string {
  return `https://${localHost(config.listen.address)}:${config.listen.client_port}`;
}
