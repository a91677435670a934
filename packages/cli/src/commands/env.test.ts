import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MachineStore, type ProvisionRecord } from '../store.ts';
import { type CliHarness, cliHarness } from '../test-support/run-cli.ts';

let cli: CliHarness;
beforeEach(async () => {
  cli = await cliHarness();
});
afterEach(async () => {
  await cli.close();
});

/** Creates a fake-cloud machine (IP 127.0.0.1) and gives its record a provision block. */
async function machineWith(name: string, provision: Partial<ProvisionRecord>): Promise<void> {
  const created = await cli.run(['create', '-d', 'fake', '--no-provision', name]);
  expect(created.code, created.stderr).toBe(0);
  const store = new MachineStore(cli.storage);
  const record = await store.read(name);
  record.provision = { engine: { port: 2376 }, serverCertSans: ['127.0.0.1', 'localhost'], dockerPort: 2376, state: 'provisioned', ...provision };
  await store.write(record);
}

describe('machine env / config on a provisioned machine', () => {
  it('prints the engine port of the record and the machine folder as DOCKER_CERT_PATH', async () => {
    await machineWith('dev', { dockerPort: 40123, engine: { port: 40123 } });
    const result = await cli.run(['env', 'dev'], { env: { SHELL: '/usr/bin/zsh' } });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      [
        'export DOCKER_TLS_VERIFY="1"',
        'export DOCKER_HOST="tcp://127.0.0.1:40123"',
        `export DOCKER_CERT_PATH="${join(cli.storage, 'machines', 'dev')}"`,
        'export DOCKER_MACHINE_NAME="dev"',
        '# Run this command to configure your shell: ',
        '# eval $(machine env dev)',
        '',
      ].join('\n'),
    );
    const dir = join(cli.storage, 'machines', 'dev');
    expect((await cli.run(['config', 'dev'])).stdout).toBe(`--tlsverify\n--tlscacert="${dir}/ca.pem"\n--tlscert="${dir}/cert.pem"\n--tlskey="${dir}/key.pem"\n-H=tcp://127.0.0.1:40123\n`);
  });

  it('--no-proxy adds the IP to the NO_PROXY in use; -u --no-proxy unsets it', async () => {
    await machineWith('dev', {});
    const set = await cli.run(['env', '--shell', 'fish', '--no-proxy', 'dev'], { env: { NO_PROXY: 'localhost,.corp' } });
    expect(set.stdout).toContain('set -gx NO_PROXY "localhost,.corp,127.0.0.1";\n# Run this command to configure your shell: \n# eval (machine env --shell fish --no-proxy dev)\n');
    const lower = await cli.run(['env', '--shell', 'bash', '--no-proxy', 'dev'], { env: { no_proxy: '127.0.0.1' } });
    expect(lower.stdout).toContain('export no_proxy="127.0.0.1"\n');
    const unset = await cli.run(['env', '--shell', 'bash', '-u', '--no-proxy']);
    expect(unset.stdout).toBe(
      'unset DOCKER_TLS_VERIFY\nunset DOCKER_HOST\nunset DOCKER_CERT_PATH\nunset DOCKER_MACHINE_NAME\nunset NO_PROXY\n# Run this command to configure your shell: \n# eval $(machine env --shell bash -u --no-proxy)\n',
    );
  });

  it('fails like the reference without $SHELL or --shell', async () => {
    await machineWith('dev', {});
    const result = await cli.run(['env', 'dev'], { env: { SHELL: '' } });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('The default lines below are for a sh/bash shell, you can specify the shell you\'re using, with the --shell flag.\nError: Unknown shell\n');
  });

  it('refuses an IP the server certificate does not name, saying how to fix it', async () => {
    await machineWith('moved', { serverCertSans: ['203.0.113.9', 'localhost'] });
    const result = await cli.run(['env', '--shell', 'bash', 'moved']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'Error checking TLS connection: the server certificate of "moved" is valid for 203.0.113.9, localhost, not 127.0.0.1; "machine regenerate-certs moved" (or "machine restart moved") issues a new one\n',
    );
  });

  it('says what to do for a machine without an engine or whose provisioning failed', async () => {
    await machineWith('bare', { state: 'skipped' });
    expect((await cli.run(['env', '--shell', 'bash', 'bare'])).stderr).toBe(
      'machine "bare" has no Docker engine (it was created with --no-provision); "machine provision bare" installs one\n',
    );
    await machineWith('broken', { state: 'failed', error: 'provisioning broken failed at install: exit 1' });
    expect((await cli.run(['config', 'broken'])).stderr).toBe(
      'machine "broken" has no working Docker engine: provisioning broken failed at install: exit 1; run "machine provision broken" to retry, or "machine rm broken"\n',
    );
  });
});

describe('machine regenerate-certs', () => {
  it('asks the reference\'s question and changes nothing when the answer is no', async () => {
    await machineWith('dev', {});
    const declined = await cli.run(['regenerate-certs', 'dev'], { stdin: 'n\n' });
    expect(declined).toMatchObject({ code: 0, stdout: 'Regenerate TLS machine certs?  Warning: this is irreversible. (y/n): ', stderr: '' });
    const noStdin = await cli.run(['regenerate-certs', 'dev']);
    expect(noStdin.code).toBe(0);
    expect(noStdin.stdout).not.toContain('Regenerating');
  });

  it('refuses a machine without an engine, naming the fix', async () => {
    await machineWith('bare', { state: 'skipped' });
    const result = await cli.run(['regenerate-certs', '-f', 'bare']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('machine "bare" has no Docker engine to regenerate certificates for; "machine provision bare" installs one\n');
  });
});
