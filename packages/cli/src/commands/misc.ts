import { ExitCode } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { writeLine } from '../io.ts';

/** `machine sim stop|status`. */
export async function simCommand(ctx: CommandContext, action: string): Promise<number> {
  const sim = await import('../sim-mode.ts');
  if (action === 'stop') {
    const stopped = await sim.stopSim(ctx);
    writeLine(ctx.io.stdout, stopped ? 'Stopped the cloud simulator.' : 'The cloud simulator is not running.');
    return ExitCode.ok;
  }
  const state = await sim.readSimState(ctx.store.root);
  writeLine(ctx.io.stdout, state === undefined ? 'The cloud simulator is not running.' : `The cloud simulator is running (pid ${state.pid}): ${JSON.stringify(state.endpoints)}`);
  return ExitCode.ok;
}

const commandNames = ['active', 'completion', 'config', 'create', 'drivers', 'env', 'help', 'inspect', 'ip', 'kill', 'ls', 'mount', 'provision', 'regenerate-certs', 'restart', 'rm', 'scp', 'sim', 'ssh', 'start', 'status', 'stop', 'store', 'sweep', 'trust-host-key', 'upgrade', 'url', 'version'];
const machineCommands = ['config', 'env', 'inspect', 'ip', 'kill', 'provision', 'regenerate-certs', 'restart', 'rm', 'scp', 'ssh', 'start', 'status', 'stop', 'trust-host-key', 'upgrade', 'url'];

/** `machine completion bash|zsh|fish`: a completion script; machine names come from `machine ls -q`. */
export function completionCommand(ctx: CommandContext, shell: string): number {
  const commands = commandNames.join(' ');
  const machineOnes = machineCommands.join('|');
  let script: string;
  if (shell === 'fish') {
    script = [
      `complete -c machine -f -n '__fish_use_subcommand' -a '${commands}'`,
      `complete -c machine -f -n '__fish_seen_subcommand_from ${machineCommands.join(' ')}' -a '(machine ls -q 2>/dev/null)'`,
      `complete -c machine -f -n '__fish_seen_subcommand_from create' -s d -l driver -a '(machine drivers 2>/dev/null | tail -n +2 | cut -d" " -f1)'`,
    ].join('\n');
  } else {
    script = [
      '_machine_complete() {',
      `  local cur="\${COMP_WORDS[COMP_CWORD]}"`,
      '  if [ "$COMP_CWORD" -eq 1 ]; then',
      `    COMPREPLY=($(compgen -W "${commands}" -- "$cur"))`,
      '    return',
      '  fi',
      `  case "\${COMP_WORDS[1]}" in`,
      `    ${machineOnes}) COMPREPLY=($(compgen -W "$(machine ls -q 2>/dev/null)" -- "$cur")) ;;`,
      '  esac',
      '}',
      shell === 'zsh' ? 'autoload -U +X bashcompinit && bashcompinit\ncomplete -F _machine_complete machine' : 'complete -F _machine_complete machine',
    ].join('\n');
  }
  writeLine(ctx.io.stdout, script);
  return ExitCode.ok;
}
