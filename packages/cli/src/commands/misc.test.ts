import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from '../test-support/run-cli.ts';

let cli: CliHarness;
beforeEach(async () => {
  cli = await cliHarness();
});
afterEach(async () => {
  await cli.close();
});

describe('completion, version and sim status', () => {
  it('prints bash, zsh and fish completion scripts that complete commands and machine names', async () => {
    const bash = await cli.run(['completion', 'bash']);
    expect(bash.code).toBe(0);
    expect(bash.stdout).toContain('complete -F _machine_complete machine');
    expect(bash.stdout).toMatch(/compgen -W "active completion config create .*version"/);
    expect(bash.stdout).toContain('$(machine ls -q 2>/dev/null)');
    expect((await cli.run(['completion', 'zsh'])).stdout).toContain('bashcompinit');
    const fish = await cli.run(['completion', 'fish']);
    expect(fish.stdout).toContain("complete -c machine -f -n '__fish_use_subcommand'");
    expect(fish.stdout).toContain('(machine ls -q 2>/dev/null)');
  });

  it('prints the version for version, --version and -v', async () => {
    for (const args of [['version'], ['--version'], ['-v']]) {
      const result = await cli.run(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^machine version \d+\.\d+\.\d+, node \d+/);
    }
  });

  it('reports a simulator that is not running', async () => {
    expect((await cli.run(['sim', 'status'])).stdout).toBe('The cloud simulator is not running.\n');
    expect((await cli.run(['sim', 'stop'])).stdout).toBe('The cloud simulator is not running.\n');
    const bad = await cli.run(['sim', 'explode']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("'explode' is invalid for argument 'action'. Allowed choices are stop, status.");
  });

  it('prints the help with every command and exits 0', async () => {
    const help = await cli.run(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['create', 'ls', 'ssh', 'scp', 'env', 'inspect', 'drivers', 'rm']) expect(help.stdout).toContain(`  ${command}`);
  });
});
