// `kv2 __module <role> <module> <role-dir>`: how the supervisor starts a module (hidden from help).
import { UsageError } from '../common/errors';
import { runModuleProcess } from '../boot/module-process';
import { findModule } from '../boot/roles';

export const MODULE_COMMAND = '__module';

export async function runModuleCommand(args: readonly string[]): Promise<never> {
  const [role, name, roleDir] = args;
  const definition = role && name ? findModule(role, name) : undefined;
  if (!definition || !roleDir) throw new UsageError(`${MODULE_COMMAND} needs <role> <module> <role-dir> of a known module`);
  return runModuleProcess(definition, roleDir);
}
