import { offersSSH, redactSecrets } from '@machine/driver-core';
import { CliError, ExitCode, errorLine } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { writeLine } from '../io.ts';
import { openMachine } from '../machine-host.ts';
import { progressView } from '../progress.ts';
import { explainHostKeyError } from '../ssh-target.ts';
import { forEachMachine } from './lifecycle.ts';
import { pinnedSSH } from './provision.ts';

/**
 * `machine upgrade NAME…`, like the reference's `Host.Upgrade`: a stopped machine is started first
 * ("Starting machine so machine can be upgraded..."), then Docker Engine is upgraded (the package
 * manager for an engine from get.docker.com, else the recorded `--engine-install-url` again),
 * restarted with the same TLS configuration and awaited (`_ping`); the new version is recorded.
 * The names run concurrently, each with its progress; exit 1 when any failed.
 */
export async function upgradeCommand(ctx: CommandContext, names: readonly string[]): Promise<number> {
  const operation = ctx.io.signal === undefined ? {} : { signal: ctx.io.signal };
  const progress = progressView(ctx.io.stdout, { machines: names });
  const failures = await forEachMachine(ctx, names, async (name) => {
    const print = progress.printer(names.length > 1 ? name : undefined);
    const lock = await ctx.store.lock(name);
    try {
      const machine = await openMachine(ctx, name);
      const { record, driver } = machine;
      const provision = record.provision;
      if (record.status !== 'ready') throw new CliError(`machine "${name}" was not created completely; \`machine rm ${name}\` deletes what it made`);
      if (!offersSSH(machine.descriptor) || provision === undefined || provision.state === 'skipped') {
        throw new CliError(`machine "${name}" has no Docker Engine installed by machine to upgrade${offersSSH(machine.descriptor) ? `; \`machine provision ${name}\` installs one` : ''}`);
      }
      if (provision.state !== 'provisioned') throw new CliError(`Docker Engine on "${name}" was not provisioned completely: \`machine provision ${name}\` first`);
      if ((await driver.getState(operation)) !== 'Running') {
        print({ step: 'start', phase: 'start', message: `Starting machine "${name}" so it can be upgraded...` });
        await driver.start(operation);
        print({ step: 'start', phase: 'done', message: `Started "${name}".`, plain: true });
        // A new public IP after the stop: a new server certificate first, as `machine start` does.
        const { refreshCertificateAfterIpChange } = await import('../provisioning.ts');
        const changed = await refreshCertificateAfterIpChange({ name, store: ctx.store, driver, provision, ssh: () => pinnedSSH(ctx, machine), onProgress: print, ...operation });
        if (changed) await ctx.store.write(record);
      }
      const target = await pinnedSSH(ctx, machine);
      const { clientCertificatesIn, engineOf } = await import('../provisioning.ts');
      const { upgradeDocker, ProvisionError } = await import('@machine/provision');
      print({ step: 'upgrade', phase: 'start', message: `Upgrading Docker Engine on "${name}"...` });
      const result = await upgradeDocker(
        { ssh: target, dockerHost: await driver.getIP(operation) },
        { engine: await engineOf(provision), client: clientCertificatesIn(await ctx.store.certsDir()), onProgress: print, ...operation },
      ).catch((error: unknown) => {
        const explained = explainHostKeyError(error, name);
        if (!ProvisionError.isInstance(explained)) throw explained;
        // The engine keeps its TLS configuration: the machine stays provisioned; say what failed and why.
        writeLine(ctx.io.stderr, redactSecrets(errorLine(explained), machine.secrets));
        if (explained.logTail.length > 0) {
          writeLine(ctx.io.stderr, 'Last lines of the output on the machine:');
          for (const line of explained.logTail) writeLine(ctx.io.stderr, `    ${redactSecrets(line, machine.secrets)}`);
        }
        throw new CliError(''); // reported above
      });
      record.provision = { ...provision, dockerVersion: result.dockerVersion };
      await ctx.store.write(record);
      const message =
        result.previousVersion === result.dockerVersion
          ? `Docker Engine ${result.dockerVersion} on "${name}" is the newest version.`
          : `Upgraded Docker Engine on "${name}"${result.previousVersion === undefined ? '' : ` from ${result.previousVersion}`} to ${result.dockerVersion}.`;
      print({ step: 'upgrade', phase: 'done', message, plain: true });
    } catch (error) {
      print({ step: 'upgrade', phase: 'done', message: errorLine(error), failed: true });
      throw error;
    } finally {
      await lock.release();
    }
  });
  progress.close();
  return failures === 0 ? ExitCode.ok : ExitCode.error;
}
