// The server commands the mongodb module sends (hello, replSetInitiate, replSetGetConfig,
// replSetGetStatus, replSetReconfig, shutdown), each checked against the reply shape the MongoDB manual
// documents, so that a reply we do not understand is a clear error instead of a wrong decision.
// Error codes: 23 AlreadyInitialized, 59 CommandNotFound, 91 ShutdownInProgress, 93
// InvalidReplicaSetConfig (we hold a config we are not a member of), 94 NotYetInitialized, 109
// ConfigurationInProgress, 308 CurrentConfigNotCommittedYet, 11600 InterruptedAtShutdown (mongod's
// src/mongo/base/error_codes.yml).
import { MongoError, MongoNetworkError, MongoServerError, MongoServerSelectionError, type Db, type Document } from 'mongodb';

export const ErrorCode = {
  AlreadyInitialized: 23,
  CommandNotFound: 59,
  ShutdownInProgress: 91,
  InvalidReplicaSetConfig: 93,
  NotYetInitialized: 94,
  ConfigurationInProgress: 109,
  CurrentConfigNotCommittedYet: 308,
  InterruptedAtShutdown: 11600,
} as const;

/** Replica-set member states (replSetGetStatus members[n].state / myState). */
export const MemberState = {
  STARTUP: 0,
  PRIMARY: 1,
  SECONDARY: 2,
  RECOVERING: 3,
  STARTUP2: 5,
  UNKNOWN: 6,
  ARBITER: 7,
  DOWN: 8,
  ROLLBACK: 9,
  REMOVED: 10,
} as const;

export class UnexpectedReplyError extends Error {
  constructor(command: string, detail: string, reply: unknown) {
    super(`unexpected reply to ${command}: ${detail} (reply: ${safeJson(reply)})`);
    this.name = 'UnexpectedReplyError';
  }
}

function safeJson(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text.length > 500 ? `${text.slice(0, 500)}...` : text;
  } catch {
    return String(value);
  }
}

export function serverErrorCode(error: unknown): number | undefined {
  return error instanceof MongoServerError && typeof error.code === 'number' ? error.code : undefined;
}

/** The connection broke or no server answered: what the shutdown command causes when it works. */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError) return true;
  // Closed pools and topologies surface as other MongoError subclasses (MongoTopologyClosedError, ...).
  return error instanceof MongoError && /closed|ECONNRESET|ECONNREFUSED|socket|connection/i.test(error.message);
}

export interface HelloReply {
  /** Present once the member has a replica-set config it belongs to. */
  setName?: string;
  isWritablePrimary: boolean;
  secondary: boolean;
  /** hello of a member started with --replSet that has no (valid) config: isreplicaset true, no setName. */
  isreplicaset?: boolean;
  info?: string;
  me?: string;
  hosts?: string[];
  passives?: string[];
  primary?: string;
  setVersion?: number;
}

/**
 * `hello` (MongoDB 4.4.2+), or `isMaster` on a mongod that does not know it yet: same fields, except
 * `ismaster` for `isWritablePrimary`.
 */
export async function hello(admin: Db, signal?: AbortSignal): Promise<HelloReply> {
  let reply: Document;
  try {
    reply = await admin.command({ hello: 1 }, { signal });
  } catch (error) {
    if (serverErrorCode(error) !== ErrorCode.CommandNotFound) throw error;
    reply = await admin.command({ isMaster: 1 }, { signal });
    reply = { ...reply, isWritablePrimary: reply.ismaster };
  }
  if (typeof reply.isWritablePrimary !== 'boolean') throw new UnexpectedReplyError('hello', 'no boolean isWritablePrimary', reply);
  if (reply.setName !== undefined && typeof reply.setName !== 'string') throw new UnexpectedReplyError('hello', 'setName is not a string', reply);
  return {
    setName: reply.setName,
    isWritablePrimary: reply.isWritablePrimary,
    secondary: reply.secondary === true,
    isreplicaset: reply.isreplicaset === true,
    info: typeof reply.info === 'string' ? reply.info : undefined,
    me: typeof reply.me === 'string' ? reply.me : undefined,
    hosts: Array.isArray(reply.hosts) ? reply.hosts.map(String) : undefined,
    passives: Array.isArray(reply.passives) ? reply.passives.map(String) : undefined,
    primary: typeof reply.primary === 'string' ? reply.primary : undefined,
    setVersion: typeof reply.setVersion === 'number' ? reply.setVersion : undefined,
  };
}

/** One member of a replica-set config (replSetGetConfig config.members[n]); other fields are kept as they are. */
export interface ConfigMember extends Document {
  _id: number;
  host: string;
  votes: number;
  priority: number;
  arbiterOnly?: boolean;
  hidden?: boolean;
}

/** A replica-set config as replSetGetConfig returns it; sent back (version + 1) with replSetReconfig. */
export interface ReplicaSetConfig extends Document {
  _id: string;
  version: number;
  members: ConfigMember[];
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  // Int64 fields (with promoteLongs off) come as bson Long objects.
  if (value && typeof value === 'object' && 'toNumber' in value && typeof (value as { toNumber: unknown }).toNumber === 'function') {
    return (value as { toNumber(): number }).toNumber();
  }
  return undefined;
}

function checkConfig(command: string, config: unknown, reply: unknown): ReplicaSetConfig {
  if (!config || typeof config !== 'object') throw new UnexpectedReplyError(command, 'no config document', reply);
  const doc = config as Document;
  if (typeof doc._id !== 'string') throw new UnexpectedReplyError(command, 'config._id is not a string', reply);
  if (toNumber(doc.version) === undefined) throw new UnexpectedReplyError(command, 'config.version is not a number', reply);
  if (!Array.isArray(doc.members)) throw new UnexpectedReplyError(command, 'config.members is not an array', reply);
  for (const member of doc.members as Document[]) {
    if (toNumber(member._id) === undefined || typeof member.host !== 'string') {
      throw new UnexpectedReplyError(command, 'a member without a numeric _id and a host', reply);
    }
  }
  return {
    ...doc,
    _id: doc._id,
    version: toNumber(doc.version)!,
    members: (doc.members as Document[]).map((m) => ({
      ...m,
      _id: toNumber(m._id)!,
      host: String(m.host),
      // Defaults of the manual's replica-set configuration reference.
      votes: toNumber(m.votes) ?? 1,
      priority: toNumber(m.priority) ?? 1,
    })),
  };
}

/**
 * `replSetGetConfig` (with `commitmentStatus` on a primary, MongoDB 4.4+: whether the last reconfig is
 * committed, so that the next one will be accepted). Int64 fields are kept as Long so the config goes
 * back to replSetReconfig with the types it came with.
 */
export async function getConfig(admin: Db, options: { commitmentStatus?: boolean } = {}): Promise<{ config: ReplicaSetConfig; committed?: boolean }> {
  const command: Document = { replSetGetConfig: 1 };
  if (options.commitmentStatus) command.commitmentStatus = true;
  const reply = await admin.command(command, { promoteLongs: false });
  return {
    config: checkConfig('replSetGetConfig', reply.config, reply),
    committed: typeof reply.commitmentStatus === 'boolean' ? reply.commitmentStatus : undefined,
  };
}

export interface StatusMember {
  _id: number;
  name: string;
  health: number;
  state: number;
  stateStr?: string;
  self?: boolean;
}

export interface ReplicaSetStatus {
  set: string;
  myState: number;
  members: StatusMember[];
}

/** `replSetGetStatus`. Throws MongoServerError 94 (not initiated) or 93 (not a member of its config). */
export async function getStatus(admin: Db): Promise<ReplicaSetStatus> {
  const reply = await admin.command({ replSetGetStatus: 1 });
  if (typeof reply.set !== 'string' || typeof reply.myState !== 'number' || !Array.isArray(reply.members)) {
    throw new UnexpectedReplyError('replSetGetStatus', 'missing set, myState or members', reply);
  }
  const members = (reply.members as Document[]).map((m) => {
    if (typeof m.name !== 'string' || typeof m.state !== 'number') throw new UnexpectedReplyError('replSetGetStatus', 'a member without name and state', reply);
    return {
      _id: toNumber(m._id) ?? -1,
      name: m.name,
      health: toNumber(m.health) ?? 0,
      state: m.state,
      stateStr: typeof m.stateStr === 'string' ? m.stateStr : undefined,
      self: m.self === true,
    };
  });
  return { set: reply.set, myState: reply.myState, members };
}

/** `replSetInitiate` with a one-member config: this member, voting, priority 1. */
export async function initiate(admin: Db, setName: string, host: string): Promise<void> {
  const reply = await admin.command({ replSetInitiate: { _id: setName, members: [{ _id: 0, host }] } });
  if (reply.ok !== 1) throw new UnexpectedReplyError('replSetInitiate', 'ok is not 1', reply);
}

/** `replSetReconfig`; `force` only for the disaster-recovery case (the others are gone for good). */
export async function reconfig(admin: Db, config: ReplicaSetConfig, options: { force?: boolean; maxTimeMS: number }): Promise<void> {
  const command: Document = { replSetReconfig: config, maxTimeMS: options.maxTimeMS };
  if (options.force) command.force = true;
  const reply = await admin.command(command);
  if (reply.ok !== 1) throw new UnexpectedReplyError('replSetReconfig', 'ok is not 1', reply);
}

/**
 * `shutdown`: mongod closes the connection while answering, so a connection error means it worked. On a
 * primary, `timeoutSecs` is how long it waits for an electable secondary to catch up before stepping down
 * (then it refuses, unless `force`).
 */
export async function shutdown(admin: Db, options: { timeoutSecs: number; force?: boolean; signal?: AbortSignal }): Promise<void> {
  const command: Document = { shutdown: 1, timeoutSecs: options.timeoutSecs };
  if (options.force) command.force = true;
  try {
    await admin.command(command, { signal: options.signal });
  } catch (error) {
    if (isConnectionError(error)) return;
    // The command itself may be the operation interrupted by the shutdown it started.
    const code = serverErrorCode(error);
    if (code === ErrorCode.ShutdownInProgress || code === ErrorCode.InterruptedAtShutdown) return;
    throw error;
  }
}
