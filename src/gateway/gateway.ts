// The gateway's server module: follows the cluster (etcd endpoints, judicators), serves the HTTP API and
// the web UI, and keeps gateway/service/<name> registered while it serves. On SIGINT it stops taking
// requests, lets those in flight finish, and unregisters.
import { describeError } from '../common/errors';
import type { ModuleContext } from '../common/module-context';
import { clusterKeys } from '../etcd/keys';
import { LeasedRegistration } from '../etcd/registration';
import { LiveTokens } from './api/live-tokens';
import { JudicatorLink } from './judicator-link';
import type { GatewayConfig } from './config';
import { createGatewayServer } from './server';
import { uiFiles } from './ui-files';

export async function runGateway({ config, logger, signal }: ModuleContext<GatewayConfig>): Promise<void> {
  const tokens = new LiveTokens({ flagTokens: config.tokens, file: config.tokens_file, logger });
  const link = new JudicatorLink(
    { endpoints: config.etcd.endpoints, prefix: config.etcd.prefix, clusterToken: config.cluster_token, rpc: config.rpc, refreshMs: config.etcd.refresh_ms },
    logger,
  );
  const { app } = await createGatewayServer({
    rpc: link.rpc,
    waitRpc: link.waitRpc,
    judicators: () => link.judicators(),
    logger,
    limits: config.limits,
    tokens,
    ui: uiFiles({ dir: config.ui_dir, logger }),
    rpcTimeoutMs: config.rpc.timeout_ms,
    callbackAllow: config.callback_allow,
  });
  try {
    await app.listen({ host: config.listen.address, port: config.listen.port });
  } catch (error) {
    link.close();
    throw new Error(`cannot listen on ${config.listen.address}:${config.listen.port}: ${describeError(error)}`);
  }
  logger.info(
    { listen: config.listen, etcd: config.etcd.endpoints, ...tokens.current.counts, tokens_file: config.tokens_file },
    `gateway listening on http://${config.listen.address}:${config.listen.port} (API tokens ${tokens.current.enabled ? 'required' : 'not required'})`,
  );
  tokens.follow(signal);
  const registration = new LeasedRegistration(
    () => link.connection.current(),
    { key: clusterKeys(config.etcd.prefix).gatewayService(config.name), value: () => `${config.advertise.address}:${config.advertise.port}`, ttl: config.register.ttl },
    logger,
  );
  await Promise.all([link.run(signal), registration.run(signal)]);
  await app.close();
  link.close();
}
