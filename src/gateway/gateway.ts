// The gateway's server module: follows the cluster through the judicators' RPC (with its cluster
// certificate, renewed as it goes) and serves the HTTP API and the web UI. On SIGINT it stops taking
// requests and lets those in flight finish.
import path from 'node:path';
import { describeError } from '../common/errors';
import type { ModuleContext } from '../common/module-context';
import { LiveTokens } from './api/live-tokens';
import { JudicatorLink } from './judicator-link';
import type { GatewayConfig } from './config';
import { createGatewayServer } from './server';
import { uiFiles } from './ui-files';

export async function runGateway({ config, logger, roleDir, signal }: ModuleContext<GatewayConfig>): Promise<void> {
  const tokens = new LiveTokens({ flagTokens: config.tokens, file: config.tokens_file, logger });
  const link = new JudicatorLink(
    { join: config.judicators.join, identityDir: path.resolve(roleDir, config.identity_dir), rpc: config.rpc, refreshMs: config.judicators.refresh_ms },
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
    { listen: config.listen, join: config.judicators.join, ...tokens.current.counts, tokens_file: config.tokens_file, certificate: link.identity.identity.serial },
    `gateway listening on http://${config.listen.address}:${config.listen.port} (API tokens ${tokens.current.enabled ? 'required' : 'not required'})`,
  );
  tokens.follow(signal);
  await link.run(signal);
  await app.close();
  link.close();
}
