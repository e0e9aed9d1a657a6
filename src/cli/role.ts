// `kv2 judicator|executor|gateway|standalone [flags]`: one command per role. boot/roles.ts says which
// modules each runs (and so its flags); boot/start-role.ts renders their configs and supervises them.
import type { CAC } from 'cac';
import type { CommandName } from '../boot/module-definition';
import { ROLE_COMMANDS, roleFlags } from '../boot/roles';
import { runRole } from '../boot/start-role';
import { addFlags, type Run } from './shared';

export function registerRoleCommands(cli: CAC, run: Run): void {
  for (const [name, role] of Object.entries(ROLE_COMMANDS)) {
    if (!role) continue;
    const command = cli.command(name, role.description);
    addFlags(command, roleFlags(role.modules));
    command.action((options: Record<string, unknown>) => run(() => runRole(name as CommandName, options, cli.rawArgs)));
  }
}
