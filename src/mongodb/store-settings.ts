// What the task store's opener needs from this judicator's MongoDB settings: the mongod availability that
// `--store auto` weighs (computed exactly as the mongodb module computes it, so both record the same
// decision) and the replica set's connection string. Typed input: the caller reads the settings.
import type { MongodAvailability } from '../store/open-store';
import { mongodAvailability } from './binary';
import { replicaSetUri, type MongodbConfig } from './module';

export interface MongodbStoreSettings {
  availability: MongodAvailability;
  /** Connection string of the replica set (through the local member). */
  uri: string;
}

export async function mongodbStoreSettings(config: MongodbConfig): Promise<MongodbStoreSettings> {
  const availability = await mongodAvailability({ exe: config.exe, version: config.version, download: config.download });
  return { availability, uri: replicaSetUri(config) };
}
