// Loads ioredis, the Redis client BullMQ drives (an optional peer dependency of BullMQ 6, so it must be
// installed beside it). Loaded with require so that NODE_PATH can point at a copy outside the project.
import { createRequire } from 'node:module';

export type RedisClient = {
  ping(): Promise<string>;
  quit(): Promise<string>;
  disconnect(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
};
export type RedisConstructor = new (options: Record<string, unknown>) => RedisClient;

/** The ioredis constructor, or an error saying how to get it. */
export function loadIoredis(): RedisConstructor {
  const require = createRequire(import.meta.url);
  try {
    const module = require('ioredis') as RedisConstructor & { default?: RedisConstructor };
    return module.default ?? module;
  } catch {
    throw new Error('ioredis is not installed (BullMQ 6 needs it beside it): npm install --save-dev ioredis');
  }
}
