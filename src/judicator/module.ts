// The judicator's main module as the supervisor sees it: flags, config/main.json and its schema.
import { z } from 'zod';
import { logSchema, renderLog } from '../boot/config-files';
import { PORT, checkNodeName, hostnameDefault, resolveAddress, resolveNodeName, type FlagSpec } from '../boot/flags';
import type { ModuleDefinition } from '../boot/module-definition';
import { localClientUrl } from '../cluster/etcd-module';

const port = z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d+$/).transform(Number)]);

export const judicatorConfigSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-" only'),
  listen: z.object({ address: z.string().min(1), port }),
  advertise: z.object({ address: z.string().min(1), port }),
  etcd: z.object({ endpoints: z.array(z.string().min(1)).min(1), prefix: z.string().min(1) }),
  register: z.object({
    /** Seconds the judicator/service key outlives a judicator that dies without a word. */
    ttl: z.number().int().min(2),
  }),
  log: logSchema,
});
export type JudicatorConfig = z.infer<typeof judicatorConfigSchema>;

export const judicatorMainFlags: FlagSpec[] = [
  { name: 'main-name', type: 'string', default: hostnameDefault, defaultText: 'the hostname', check: checkNodeName, description: "this node's name (ENV: read $NAME)", placeholder: 'name' },
  { name: 'main-listen-address', type: 'string', default: '0.0.0.0', description: 'address the judicator RPC listens on', placeholder: 'address' },
  { name: 'main-listen-port', ...PORT, default: 4000, description: 'port the judicator RPC listens on (also the advertised one unless given)' },
  { name: 'main-advertise-address', type: 'string', default: 'localhost', description: 'address executors and gateways use to reach this judicator', placeholder: 'address' },
  { name: 'main-advertise-port', ...PORT, description: 'advertised RPC port', defaultText: 'the listen port' },
  { name: 'main-register-ttl', type: 'int', min: 2, max: 3600, default: 10, description: 'seconds the registration outlives a judicator that died' },
];

export const judicatorMainModule: ModuleDefinition<JudicatorConfig> = {
  name: 'main',
  role: 'judicator',
  flags: judicatorMainFlags,
  schema: judicatorConfigSchema,
  render({ flags }) {
    const listenPort = Number(flags['main-listen-port']);
    return {
      name: resolveNodeName(String(flags['main-name'])),
      listen: { address: resolveAddress(String(flags['main-listen-address'])), port: listenPort },
      advertise: {
        address: resolveAddress(String(flags['main-advertise-address'])),
        port: flags['main-advertise-port'] === undefined ? listenPort : Number(flags['main-advertise-port']),
      },
      etcd: {
        endpoints: [
          localClientUrl({
            listen: {
              address: resolveAddress(String(flags['etcd-listen-address'])),
              peer_port: Number(flags['etcd-listen-peer-port']),
              client_port: Number(flags['etcd-listen-client-port']),
            },
          }),
        ],
        prefix: String(flags['etcd-prefix']),
      },
      register: { ttl: Number(flags['main-register-ttl']) },
      log: renderLog('main', flags),
    };
  },
  load: () => import('./main').then((m) => m.runJudicator),
};
