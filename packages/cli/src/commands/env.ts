import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError, ExitCode } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { checkedDockerUrl } from '../docker-endpoint.ts';
import { writeLine } from '../io.ts';
import type { OpenMachine } from '../machine-host.ts';
import { detectShell, dockerEnvKeys, goQuote, hintCommandLine, noProxyFromEnv, noProxyWith, renderSet, renderUnset, unknownShellNote } from '../shell-env.ts';
import { runningMachine } from './info.ts';

function operation(ctx: CommandContext): { signal?: AbortSignal } {
  return ctx.io.signal === undefined ? {} : { signal: ctx.io.signal };
}

/**
 * The folder the docker client reads ca.pem, cert.pem and key.pem from: the machine's folder in the
 * folder store; with PostgreSQL (whose machine folders exist only while a command runs) a copy in
 * `STORAGE/docker-certs/NAME` (0700, key 0600), the docker client's own, like ~/.docker.
 */
async function dockerCertPath(ctx: CommandContext, name: string): Promise<string> {
  if (ctx.store.kind === 'file') return ctx.store.machineDir(name);
  const target = join(ctx.store.root, 'docker-certs', name);
  await mkdir(target, { recursive: true, mode: 0o700 });
  for (const file of ['ca.pem', 'cert.pem', 'key.pem']) await copyFile(join(ctx.store.machineDir(name), file), join(target, file));
  await chmod(join(target, 'key.pem'), 0o600);
  return target;
}

/** The checked Docker URL and IP of a running machine. */
export async function endpoint(ctx: CommandContext, machine: OpenMachine): Promise<{ url: string; ip: string }> {
  const ip = await machine.driver.getIP(operation(ctx));
  const url = await checkedDockerUrl(machine.record, ip, () => machine.driver.getURL(operation(ctx)));
  return { url, ip };
}

function shellOf(ctx: CommandContext, option: string | undefined): string {
  const shell = detectShell(option, ctx.io.env);
  if (shell === undefined) {
    writeLine(ctx.io.stderr, unknownShellNote);
    throw new CliError('Error: Unknown shell');
  }
  return shell;
}

/**
 * `machine env [--shell S] [-u] [--no-proxy] NAME`: the Docker client environment, exactly the
 * reference's lines. DOCKER_CERT_PATH is the machine's folder, which holds copies of the CA and
 * client certificate (`ca.pem`, `cert.pem`, `key.pem`), like the reference's.
 */
export async function envCommand(ctx: CommandContext, name: string | undefined, options: { shell?: string; unset?: boolean; noProxy?: boolean }): Promise<number> {
  const commandLine = hintCommandLine(ctx.argv);
  if (options.unset === true) {
    if (name !== undefined) throw new CliError('Error: Expected no machine name when the -u flag is present');
    const shell = shellOf(ctx, options.shell);
    const keys: string[] = [...dockerEnvKeys];
    if (options.noProxy === true) keys.push(noProxyFromEnv(ctx.io.env)[0]);
    ctx.io.stdout.write(renderUnset(shell, keys, commandLine));
    return ExitCode.ok;
  }
  const machineName = name ?? 'default';
  const machine = await runningMachine(ctx, machineName);
  const { url, ip } = await endpoint(ctx, machine);
  const shell = shellOf(ctx, options.shell);
  const variables: [string, string][] = [
    ['DOCKER_TLS_VERIFY', '1'],
    ['DOCKER_HOST', url],
    ['DOCKER_CERT_PATH', await dockerCertPath(ctx, machineName)],
    ['DOCKER_MACHINE_NAME', machineName],
  ];
  // Like the reference on Windows, so docker-compose converts the paths.
  if (process.platform === 'win32') variables.push(['COMPOSE_CONVERT_WINDOWS_PATHS', 'true']);
  if (options.noProxy === true) variables.push(noProxyWith(ctx.io.env, ip));
  ctx.io.stdout.write(renderSet(shell, variables, commandLine));
  return ExitCode.ok;
}

/** `machine config NAME`: the docker client flags for the machine, the reference's five lines. */
export async function configCommand(ctx: CommandContext, name: string): Promise<number> {
  const machine = await runningMachine(ctx, name);
  const { url } = await endpoint(ctx, machine);
  const dir = await dockerCertPath(ctx, name);
  writeLine(ctx.io.stdout, `--tlsverify\n--tlscacert=${goQuote(join(dir, 'ca.pem'))}\n--tlscert=${goQuote(join(dir, 'cert.pem'))}\n--tlskey=${goQuote(join(dir, 'key.pem'))}\n-H=${url}`);
  return ExitCode.ok;
}
