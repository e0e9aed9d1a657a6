// What the judicator's main module needs from the mongodb module to choose and open its task store: the
// mongod availability that `--store auto` weighs (computed exactly as the mongodb module computes it, so
// both record the same decision) and the replica set's connection string. Read from config/mongodb.json,
// so that an edit made during maintenance counts.
import { configPath, readConfigFile } from '../boot/config-files';
import type { MongodAvailability } from '../store/choose-store';
import { mongodAvailability } from './binary';
import { mongodbConfigSchema, replicaSetUri, type MongodbConfig } from '../boot/modules/mongodb';

export interface MongodbStoreSettings {
  availability: MongodAvailability;
  /** Connection string of the replica set (through the local member). */
  uri: string;
  config: MongodbConfig;
}

/** Undefined when this role has no mongodb module (no config/mongodb.json): MongoDB is then unavailable. */
export async function readMongodbStoreSettings(roleDir: string): Promise<MongodbStoreSettings | undefined> {
  let config: MongodbConfig;
  try {
    config = readConfigFile(configPath(roleDir, 'mongodb'), mongodbConfigSchema);
  } catch (error) {
    if ((error as Error).message.includes('ENOENT') || /cannot read .*no such file/i.test((error as Error).message)) return undefined;
    throw error;
  }
  const availability = await mongodAvailability({ exe: config.exe, version: config.version, download: config.download });
  return { availability, uri: replicaSetUri(config), config };
}
