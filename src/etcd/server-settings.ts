// How kv2 runs etcd servers (the judicator's member and the scratch etcd of backups): the limits the task
// store depends on, in one place.

/** The task store batches several operations per task in one transaction (etcd's default is 128). */
export const MAX_TXN_OPS = 10_000;
/** Largest request etcd accepts (SPEC §5): a 15.5 MiB task plus its keys. */
export const DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** etcd's storage quota (SPEC §5). */
export const DEFAULT_QUOTA_BACKEND_BYTES = 8 * 1024 * 1024 * 1024;
