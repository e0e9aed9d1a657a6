// The gateway's server module as the command line sees it: its flags (the original's uwsgi names kept as
// aliases) and how they render config/server.json (the config itself is the gateway's: gateway/config.ts).
import path from 'node:path';
import { gatewayConfigSchema, type GatewayConfig } from '../../gateway/config';
import { PORT, nodeNameFlag, optionalText, resolveAddress, resolveNodeName, type FlagSpec } from '../flags';
import { defineModule } from '../module-definition';
import { bootstrapJudicators, IDENTITY_DIR, joinFlags, removedClusterTokenFlags, removedEtcdClientFlags } from '../join-flags';
import { taskCallbackAllowFlag } from './judicator';
import { DEFAULT_TASK_MAX_SIZE } from '../../task/limits';
import { DEFAULT_WAIT_MAX_HELD, DEFAULT_WAIT_MAX_S } from '../../gateway/api/wait';
import { DEFAULT_EVENTS_BUFFER_BYTES, DEFAULT_EVENTS_MAX_STREAMS } from '../../gateway/api/events';

export const gatewayServerFlags: FlagSpec[] = [
  { name: 'server-port', aliases: ['uwsgi-port'], ...PORT, default: 7000, description: 'port the HTTP API and web UI listen on' },
  { name: 'server-host', aliases: ['uwsgi-host'], type: 'string', default: '0.0.0.0', description: 'address the HTTP API and web UI listen on (ALL, or an interface name in capitals)', placeholder: 'address' },
  nodeNameFlag('server-name', "this gateway's name (in its cluster certificate; ENV: read $NAME)"),
  { name: 'server-advertise-address', type: 'string', default: 'localhost', description: 'address clients use to reach this gateway', placeholder: 'address' },
  ...joinFlags,
  ...removedClusterTokenFlags,
  ...removedEtcdClientFlags('gateway'),
  { name: 'server-token', type: 'strings', secret: true, description: 'admin API token (repeatable); with any token set, every /api call needs Authorization: Bearer <token> (a tokens file keeps it off the command line)', placeholder: 'token' },
  { name: 'server-tokens-file', type: 'string', description: 'file of API tokens, "<token>", "<token> admin" or "<token> <user id>" a line (# starts a comment); read again on SIGHUP and when it changes', placeholder: 'file' },
  taskCallbackAllowFlag,
];

export const gatewayServerModule = defineModule<GatewayConfig>({
  name: 'server',
  role: 'gateway',
  flags: gatewayServerFlags,
  schema: gatewayConfigSchema,
  render(context) {
    const { flags } = context;
    const listenPort = Number(flags['server-port']);
    const tokensFile = flags['server-tokens-file'];
    return {
      name: resolveNodeName(String(flags['server-name'])),
      listen: { address: resolveAddress(String(flags['server-host'])), port: listenPort },
      advertise: { address: resolveAddress(String(flags['server-advertise-address'])), port: listenPort },
      judicators: { join: bootstrapJudicators(context, 'gateway'), refresh_ms: 10_000 },
      identity_dir: IDENTITY_DIR,
      tokens: Array.isArray(flags['server-token']) ? flags['server-token'] : [],
      // Resolved against the directory kv2 was started from: the module runs in its role dir.
      tokens_file: typeof tokensFile === 'string' && tokensFile ? path.resolve(tokensFile) : null,
      rpc: { timeout_ms: 10_000, attempts: 3, avoid_ms: 5_000, retry_for_ms: 5_000 },
      limits: {
        body_bytes: 24 * 1024 * 1024,
        task_max_size: DEFAULT_TASK_MAX_SIZE,
        batch_max: 100,
        batch_concurrency: 8,
        wait_max_s: DEFAULT_WAIT_MAX_S,
        wait_max_held: DEFAULT_WAIT_MAX_HELD,
        events_max_streams: DEFAULT_EVENTS_MAX_STREAMS,
        events_buffer_bytes: DEFAULT_EVENTS_BUFFER_BYTES,
      },
      callback_allow: Array.isArray(flags['task-callback-allow']) ? flags['task-callback-allow'] : [],
      ui_dir: null,
    };
  },
  // A person starting kv2 (standalone, first of all) is told where to point a browser.
  announce: (config) => {
    const everywhere = config.listen.address === '0.0.0.0' || config.listen.address === '::';
    const host = everywhere ? 'localhost' : config.listen.address.includes(':') ? `[${config.listen.address}]` : config.listen.address;
    return `kv2 web UI: http://${host}:${config.listen.port}/${everywhere ? ` (and on every address of this machine)` : ''}`;
  },
  load: () => import('../../gateway/gateway').then((m) => m.runGateway),
});
