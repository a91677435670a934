import { CliError, ExitCode } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { writeLine } from '../io.ts';
import { openMachine } from '../machine-host.ts';
import { presentedHostKey, writeKnownHosts } from '../ssh-target.ts';

/**
 * `machine trust-host-key NAME [--fingerprint SHA256:…] [--yes]`: shows the SSH host key the machine
 * presents next to the recorded one, and records it (config.json and the machine's known_hosts) only
 * when `--fingerprint` names exactly that key (checked out of band, e.g. in the provider's console),
 * or with `--yes`. Without either it changes nothing and exits 1.
 */
export async function trustHostKeyCommand(ctx: CommandContext, name: string, options: { fingerprint?: string; yes?: boolean }): Promise<number> {
  const lock = await ctx.store.lock(name);
  try {
    const machine = await openMachine(ctx, name);
    const { driver, record } = machine;
    const signal = ctx.io.signal === undefined ? {} : { signal: ctx.io.signal };
    // A driver whose state comes from SSH (generic) rejects with the host-key refusal: the host is up.
    const state = await driver.getState(signal).catch((error: unknown) => {
      if ((error as { failure?: unknown } | null)?.failure === 'host-key') return 'Running';
      throw error;
    });
    if (state !== 'Running') throw new CliError(`Host "${name}" is not running: \`machine start ${name}\` first`);
    const host = await driver.getSSHHostname(signal);
    const port = record.ssh?.port ?? (await driver.getSSHPort(signal));
    const presented = await presentedHostKey(host, port);
    // A record that stopped before SSH was recorded keeps the key the driver saw in its data.
    const recorded = record.ssh?.hostKeyFingerprint ?? (typeof record.data.hostKeyFingerprint === 'string' ? record.data.hostKeyFingerprint : undefined);
    writeLine(ctx.io.stdout, `Machine "${name}" (${host}:${port}) presents the host key ${presented.fingerprint} (${presented.key.split(' ')[0]}).`);
    writeLine(ctx.io.stdout, `Recorded host key: ${recorded ?? 'none'}.`);
    if (recorded === presented.fingerprint) {
      writeLine(ctx.io.stdout, 'It is the recorded key: nothing to do.');
      return ExitCode.ok;
    }
    if (options.fingerprint !== undefined && options.fingerprint !== presented.fingerprint) {
      throw new CliError(`--fingerprint ${options.fingerprint} does not match the key "${name}" presents (${presented.fingerprint}); nothing was recorded`);
    }
    if (options.fingerprint === undefined && options.yes !== true) {
      writeLine(
        ctx.io.stderr,
        `Not recorded. Check ${presented.fingerprint} out of band (the provider's console, or \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on the machine), then run "machine trust-host-key ${name} --fingerprint ${presented.fingerprint}".`,
      );
      return ExitCode.error;
    }
    if (record.ssh !== undefined) {
      record.ssh.hostKeyFingerprint = presented.fingerprint;
      record.ssh.hostKey = presented.key;
    }
    record.data = { ...record.data, hostKeyFingerprint: presented.fingerprint };
    await writeKnownHosts(ctx.store.machineDir(name), `machine-${name}`, presented.key);
    await ctx.store.write(record);
    writeLine(ctx.io.stdout, `Recorded ${presented.fingerprint} as the host key of "${name}".`);
    return ExitCode.ok;
  } finally {
    await lock.release();
  }
}
