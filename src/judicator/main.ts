// The judicator's main module: the RPC server executors, gateways and the CLI talk to, registered in etcd
// under judicator/service/<name> for as long as it serves.
import Fastify from 'fastify';
import { describeError } from '../common/errors';
import type { ModuleContext } from '../boot/module-definition';
import { createEtcdClient } from '../cluster/etcd-client';
import { clusterKeys } from '../cluster/keys';
import { LeasedRegistration } from '../cluster/registration';
import type { JudicatorConfig } from './module';

export async function runJudicator({ config, logger, signal }: ModuleContext<JudicatorConfig>): Promise<void> {
  const keys = clusterKeys(config.etcd.prefix);
  const etcd = createEtcdClient(config.etcd.endpoints);
  const registration = new LeasedRegistration(
    () => etcd,
    { key: keys.judicatorService(config.name), value: () => `${config.advertise.address}:${config.advertise.port}`, ttl: config.register.ttl },
    logger,
  );
  const server = Fastify({ logger: false });
  server.get('/ping', async () => ({ result: 0 }));
  // Ready means registered in etcd: executors and gateways can find this judicator.
  server.get('/health', async (_request, reply) =>
    registration.isRegistered ? { healthy: true } : reply.code(503).send({ healthy: false, reason: 'not registered in etcd yet (is etcd up?)' }),
  );
  try {
    await server.listen({ host: config.listen.address, port: config.listen.port });
  } catch (error) {
    etcd.close();
    throw new Error(`cannot listen on ${config.listen.address}:${config.listen.port}: ${describeError(error)}`);
  }
  logger.info({ listen: config.listen }, `judicator RPC listening on ${config.listen.address}:${config.listen.port}`);
  await registration.run(signal);
  await server.close();
  etcd.close();
}
