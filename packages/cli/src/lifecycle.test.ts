import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findExecutable } from './commands/ssh.ts';
import { MachineStore } from './store.ts';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

let cli: CliHarness;
beforeEach(async () => {
  cli = await cliHarness();
});
afterEach(async () => {
  await cli.close();
});

describe('machine lifecycle on the fake cloud', () => {
  it('create → ls → status/ip/url/inspect → stop → start → restart → kill → rm leaves nothing behind', async () => {
    const created = await cli.run(['create', '-d', 'fake', '--no-provision', '--fake-region', 'local-2', '--fake-open-port=8080', 'web1']);
    expect(created.stdout).toContain('Running pre-create checks...');
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toContain('Machine "web1" is ready');

    const record = JSON.parse(await readFile(join(cli.storage, 'machines', 'web1', 'config.json'), 'utf8'));
    expect(record).toMatchObject({ name: 'web1', driver: 'fake', status: 'ready', config: { region: 'local-2', openPorts: ['8080'] } });
    expect(record.journal.map((entry: { kind: string }) => entry.kind)).toEqual(['key', 'firewall', 'instance']);
    expect(record.ssh.hostKeyFingerprint).toMatch(/^SHA256:/);
    expect((await stat(join(cli.storage, 'machines', 'web1', 'config.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(cli.storage, 'machines', 'web1', 'id_ed25519'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(cli.storage, 'machines', 'web1', 'known_hosts'), 'utf8')).toMatch(/^machine-web1 ssh-ed25519 AAAA/);

    const ls = await cli.run(['ls']);
    expect(ls.code).toBe(0);
    const [header, row] = ls.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^NAME\s+ACTIVE\s+DRIVER\s+STATE\s+URL\s+DOCKER\s+ERRORS$/);
    expect(row).toMatch(/^web1\s+-\s+fake\s+Running\s+tcp:\/\/127\.0\.0\.1:2376\s+Unknown$/);

    expect((await cli.run(['status', 'web1'])).stdout).toBe('Running\n');
    expect((await cli.run(['ip', 'web1'])).stdout).toBe('127.0.0.1\n');
    expect((await cli.run(['url', 'web1'])).stdout).toBe('tcp://127.0.0.1:2376\n');
    const inspect = JSON.parse((await cli.run(['inspect', 'web1'])).stdout);
    expect(inspect).toMatchObject({ Name: 'web1', DriverName: 'fake', Driver: { IPAddress: '127.0.0.1', MachineName: 'web1', region: 'local-2' } });
    expect((await cli.run(['inspect', '-f', '{{.Driver.IPAddress}}', 'web1'])).stdout).toBe('127.0.0.1\n');

    const stop = await cli.run(['stop', 'web1']);
    expect(stop.code).toBe(0);
    expect((await cli.run(['status', 'web1'])).stdout).toBe('Stopped\n');
    const again = await cli.run(['stop', 'web1']);
    // The reference's ErrHostAlreadyInState: an error, exit 1.
    expect(again).toMatchObject({ code: 1, stdout: '', stderr: 'Machine "web1" is already stopped.\n' });
    expect(await cli.run(['kill', 'web1'])).toMatchObject({ code: 1, stderr: 'Machine "web1" is already stopped.\n' });
    const ipStopped = await cli.run(['ip', 'web1']);
    expect(ipStopped).toMatchObject({ code: 1, stderr: 'Host is not running\n' });

    expect((await cli.run(['start', 'web1'])).code).toBe(0);
    expect((await cli.run(['status', 'web1'])).stdout).toBe('Running\n');
    expect(await cli.run(['start', 'web1'])).toMatchObject({ code: 1, stderr: 'Machine "web1" is already running.\n' });
    expect((await cli.run(['restart', 'web1'])).code).toBe(0);
    expect((await cli.run(['status', 'web1'])).stdout).toBe('Running\n');
    expect((await cli.run(['kill', 'web1'])).code).toBe(0);
    expect((await cli.run(['status', 'web1'])).stdout).toBe('Stopped\n');

    const removed = await cli.run(['rm', '-y', 'web1']);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe(
      'About to remove web1\nWARNING: This action will delete both local reference and remote instance.\nSuccessfully removed web1\n',
    );
    expect(cli.cloud.leaks()).toEqual([]);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('');
  });

  it('two concurrent creates of one name: the second gets the reference\'s "already exists", and one machine is made', async () => {
    const [first, second] = await Promise.all([
      cli.run(['create', '-d', 'fake', '--no-provision', 'twin']),
      cli.run(['create', '-d', 'fake', '--no-provision', 'twin']),
    ]);
    const codes = [first?.code, second?.code].sort();
    expect(codes).toEqual([0, 1]);
    const loser = first?.code === 1 ? first : second;
    expect(loser?.stderr).toBe('Docker machine "twin" already exists\n');
    expect((await cli.run(['ls', '-q'])).stdout).toBe('twin\n');
    expect(cli.cloud.leaks().filter((leak) => leak.startsWith('instance ')).length).toBe(1);
    // Restart of a stopped machine starts it (the reference's Restart), exit 0.
    expect((await cli.run(['kill', 'twin'])).code).toBe(0);
    expect(await cli.run(['restart', 'twin'])).toMatchObject({ code: 0, stderr: '' });
    expect((await cli.run(['status', 'twin'])).stdout).toBe('Running\n');
  });

  it('runs start/stop on several machines at once and reports each failure by name', async () => {
    for (const name of ['a1', 'a2']) expect((await cli.run(['create', '-d', 'fake', '--no-provision', name])).code).toBe(0);
    const stopped = await cli.run(['stop', 'a1', 'a2', 'missing']);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain('Docker machine "missing" does not exist');
    expect((await cli.run(['ls', '--format', '{{.Name}}={{.State}}'])).stdout).toBe('a1=Stopped\na2=Stopped\n');
    expect((await cli.run(['rm', '-f', 'a1', 'a2'])).code).toBe(0);
    expect(cli.cloud.leaks()).toEqual([]);
  });

  it('asks before removing unless -y or -f', async () => {
    await cli.run(['create', '-d', 'fake', '--no-provision', 'keep']);
    const declined = await cli.run(['rm', 'keep'], { stdin: 'n\n' });
    expect(declined.code).toBe(1);
    expect(declined.stdout).toContain('Are you sure? (y/n)');
    expect((await cli.run(['ls', '-q'])).stdout).toBe('keep\n');
    const accepted = await cli.run(['rm', 'keep'], { stdin: 'y\n' });
    expect(accepted.code).toBe(0);
    expect(cli.cloud.leaks()).toEqual([]);
  });

  it('rm -f removes the local record even when the provider fails, and says so', async () => {
    await cli.run(['create', '-d', 'fake', '--no-provision', 'stuck']);
    cli.cloud.failOn('instances.terminate', new Error('the API is down'), 10);
    const plain = await cli.run(['rm', '-y', 'stuck']);
    expect(plain.code).toBe(1);
    expect(plain.stdout).not.toContain('Successfully removed');
    // One line per resource left, naming it and why; the record is kept for a retry.
    const lines = plain.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('Error removing machine "stuck": 1 resource(s) still at the provider:');
    expect(lines[1]).toMatch(/^ {2}instance \S+: .*the API is down/);
    expect(lines[2]).toBe('The record of "stuck" is kept: run "machine rm stuck" again to retry.');
    expect(lines).toHaveLength(3);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('stuck\n');
    const forced = await cli.run(['rm', '-f', 'stuck']);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toContain('Removing the local record of "stuck" anyway (--force)');
    expect((await cli.run(['ls', '-q'])).stdout).toBe('');
  });

  it('prints the Docker environment for each shell, and config', async () => {
    await cli.run(['create', '-d', 'fake', '--no-provision', 'dev']);
    // A record without a provision block (made before provisioning existed): the driver's URL is used.
    const store = new MachineStore(cli.storage);
    const record = await store.read('dev');
    delete record.provision;
    await store.write(record);
    const bash = await cli.run(['env', 'dev'], { env: { SHELL: '/bin/bash' } });
    expect(bash.stdout).toBe(
      [
        'export DOCKER_TLS_VERIFY="1"',
        'export DOCKER_HOST="tcp://127.0.0.1:2376"',
        `export DOCKER_CERT_PATH="${join(cli.storage, 'machines', 'dev')}"`,
        'export DOCKER_MACHINE_NAME="dev"',
        '# Run this command to configure your shell: ',
        '# eval $(machine env dev)',
        '',
      ].join('\n'),
    );
    expect((await cli.run(['env', '--shell', 'fish', 'dev'])).stdout).toContain('set -gx DOCKER_HOST "tcp://127.0.0.1:2376";');
    expect((await cli.run(['env', '--shell', 'powershell', 'dev'])).stdout).toContain('$Env:DOCKER_MACHINE_NAME = "dev"');
    expect((await cli.run(['env', '--shell', 'powershell', '-u'])).stdout).toContain('Remove-Item Env:\\\\DOCKER_HOST');
    expect((await cli.run(['env', '-u', 'dev'])).stderr).toContain('Expected no machine name when the -u flag is present');
    expect((await cli.run(['config', 'dev'])).stdout).toContain('-H=tcp://127.0.0.1:2376');
    const active = await cli.run(['active'], { env: { DOCKER_HOST: 'tcp://127.0.0.1:2376' } });
    expect(active.stdout).toBe('dev\n');
    expect((await cli.run(['active'])).stderr).toBe('No active host found\n');
  });

  it('never writes or prints a secret flag', async () => {
    const token = 'tok-very-secret-1234';
    const created = await cli.run(['create', '-d', 'fake', '--no-provision', '--fake-token', token, 'sec']);
    expect(created.code).toBe(0);
    const onDisk = await readFile(join(cli.storage, 'machines', 'sec', 'config.json'), 'utf8');
    expect(onDisk).not.toContain(token);
    const inspect = await cli.run(['inspect', 'sec'], { env: { FAKE_TOKEN: token } });
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).not.toContain(token);
  });
});

describe('machine ssh', () => {
  it('runs one command through the system OpenSSH client, checking the host key, and passes the exit code through', async () => {
    expect(findExecutable('ssh', process.env.PATH)).toBeDefined();
    await cli.run(['create', '-d', 'fake', '--no-provision', 'box']);
    const uname = await cli.run(['ssh', 'box', '--', 'uname', '-a']);
    expect(uname.stdout).toContain('Linux machine');
    expect(uname.code).toBe(0);
    expect((await cli.run(['ssh', 'box', '--', 'exit', '3'])).code).toBe(3);
    expect((await cli.run(['ssh', 'box', '-C', '--', 'echo', 'compressed'])).stdout).toBe('compressed\n');
  });

  it('checks the host key: OpenSSH and the built-in client refuse a machine whose key changed', async () => {
    await cli.run(['create', '-d', 'fake', '--no-provision', 'box']);
    const knownHosts = join(cli.storage, 'machines', 'box', 'known_hosts');
    const other = generateSSHKeyPair({ comment: 'impostor' }).publicKey.split(' ').slice(0, 2).join(' ');
    await writeFile(knownHosts, `machine-box ${other}\n`);
    const openssh = await cli.run(['ssh', 'box', '--', 'echo', 'should-not-run']);
    expect(openssh.code).toBe(255);
    expect(openssh.stdout).toBe('');
    const configPath = join(cli.storage, 'machines', 'box', 'config.json');
    const record = JSON.parse(await readFile(configPath, 'utf8'));
    record.ssh.hostKeyFingerprint = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    await writeFile(configPath, JSON.stringify(record));
    const native = await cli.run(['--native-ssh', 'ssh', 'box', '--', 'echo', 'should-not-run']);
    expect(native.code).toBe(255); // OpenSSH's code for a refused host key, on both clients
    expect(native.stderr).toContain('the SSH host key of machine "box" changed (recorded SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, presented SHA256:');
    expect(native.stderr).toMatch(/run "machine trust-host-key box --fingerprint SHA256:[A-Za-z0-9+/]{43}"\n$/);
  });

  it('pins the host key of a record that has no SSH record yet (a create that stopped early): the key the driver saw, else the first key seen', async () => {
    await cli.run(['create', '-d', 'fake', '--no-provision', 'box']);
    const configPath = join(cli.storage, 'machines', 'box', 'config.json');
    const knownHosts = join(cli.storage, 'machines', 'box', 'known_hosts');
    const record = JSON.parse(await readFile(configPath, 'utf8'));
    const real = record.ssh.hostKeyFingerprint;
    delete record.ssh;
    await rm(knownHosts);
    // The driver pinned another key than the machine presents now: every SSH path refuses it.
    record.data.hostKeyFingerprint = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    await writeFile(configPath, JSON.stringify(record));
    for (const argv of [['--native-ssh', 'ssh', 'box', '--', 'echo', 'should-not-run'], ['ssh', 'box', '--', 'echo', 'should-not-run'], ['scp', 'box:/etc/hostname', join(cli.storage, 'copied')]]) {
      const refused = await cli.run(argv);
      expect(refused.code, argv.join(' ')).toBe(argv.includes('ssh') ? 255 : 1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toContain(`the SSH host key of machine "box" changed (recorded SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, presented ${real})`);
      expect(refused.stderr).toContain(`run "machine trust-host-key box --fingerprint ${real}"`);
    }
    // The command the refusal names works for such a record too.
    const trusted = await cli.run(['trust-host-key', 'box', '--fingerprint', real]);
    expect(trusted).toMatchObject({ code: 0, stderr: '' });
    expect(trusted.stdout).toContain('Recorded host key: SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.');
    expect(await cli.run(['--native-ssh', 'ssh', 'box', '--', 'echo', 'trusted'])).toMatchObject({ code: 0, stdout: 'trusted\n' });
    expect(JSON.parse(await readFile(configPath, 'utf8')).data.hostKeyFingerprint).toBe(real);
    // Nothing pinned at all: the first key seen is written to the machine's known_hosts and checked from then on.
    delete record.data.hostKeyFingerprint;
    await writeFile(configPath, JSON.stringify(record));
    expect(await cli.run(['--native-ssh', 'ssh', 'box', '--', 'echo', 'first'])).toMatchObject({ code: 0, stdout: 'first\n' });
    expect(await readFile(knownHosts, 'utf8')).toMatch(/^machine-box ssh-ed25519 AAAA/);
    const other = generateSSHKeyPair({ comment: 'impostor' }).publicKey.split(' ').slice(0, 2).join(' ');
    await writeFile(knownHosts, `machine-box ${other}\n`);
    const native = await cli.run(['--native-ssh', 'ssh', 'box', '--', 'echo', 'should-not-run']);
    expect(native).toMatchObject({ code: 255, stdout: '' });
    expect(native.stderr).toContain(`presented ${real})`);
    expect((await cli.run(['ssh', 'box', '--', 'echo', 'should-not-run'])).stdout).toBe('');
  });

  it('uses the built-in client with --native-ssh or when no ssh is on PATH', async () => {
    await cli.run(['create', '-d', 'fake', '--no-provision', 'box']);
    const native = await cli.run(['--native-ssh', 'ssh', 'box', '--', 'uname', '-a']);
    expect(native).toMatchObject({ code: 0, stdout: 'Linux machine 6.8.0-generic #1 SMP x86_64 GNU/Linux\n' });
    const noPath = await cli.run(['ssh', 'box', 'false'], { env: { PATH: '' } });
    expect(noPath.code).toBe(1);
    const options = await cli.run(['ssh', 'box', '-L', '1:2:3'], { env: { PATH: '' } });
    expect(options.stderr).toContain('the built-in SSH client does not take ssh options (-L)');
    // Like OpenSSH, options after the first word of the command belong to the remote command.
    const df = await cli.run(['ssh', 'box', 'uname', '-a'], { env: { PATH: '' } });
    expect(df).toMatchObject({ code: 0, stdout: 'Linux machine 6.8.0-generic #1 SMP x86_64 GNU/Linux\n' });
    const dashed = await cli.run(['--native-ssh', 'ssh', 'box', 'echo', 'a', '-b', '--', 'c']);
    expect(dashed).toMatchObject({ code: 0, stdout: 'a -b -- c\n' });
  });

  it('opens an interactive shell with the built-in client when no command is given', async () => {
    await cli.run(['create', '-d', 'fake', '--no-provision', 'box']);
    const shell = await cli.run(['--native-ssh', 'ssh', 'box'], { stdin: 'echo hi there\nexit 4\n' });
    expect(shell.stdout).toContain('hi there');
    expect(shell.code).toBe(4);
  });

  it('refuses a stopped machine with the reference wording', async () => {
    await cli.run(['create', '-d', 'fake', '--no-provision', 'box']);
    await cli.run(['stop', 'box']);
    const result = await cli.run(['ssh', 'box', '--', 'true']);
    expect(result).toMatchObject({ code: 1, stderr: 'Cannot run SSH command: Host "box" is not running\n' });
  });
});
