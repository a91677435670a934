import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSSHServerUnavailable, type RunningOpenSSHServer, startOpenSSHServer } from '@machine/driver-core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

/**
 * A generic machine's state comes from SSH: when its host key changes or its login is refused, the
 * CLI says exactly that (ls ERRORS, ssh), and trust-host-key works on it (it cannot be "started").
 */
const unavailable = openSSHServerUnavailable();

describe.skipIf(unavailable !== undefined)('recovering a generic machine whose host key or login changed', () => {
  let cli: CliHarness;
  let host: RunningOpenSSHServer;
  let keyDir: string;
  let keyPath: string;

  beforeEach(async () => {
    cli = await cliHarness();
    host = await startOpenSSHServer();
    keyDir = await mkdtemp(join(tmpdir(), 'machine-generic-key-'));
    keyPath = join(keyDir, 'id_ed25519');
    await writeFile(keyPath, host.clientKey?.privateKey ?? '', { mode: 0o600 });
    const created = await cli.run([
      'create', '-d', 'generic', '--no-provision',
      '--generic-ip-address', '127.0.0.1', '--generic-ssh-port', String(host.port), '--generic-ssh-user', host.username, '--generic-ssh-key', keyPath,
      'gen1',
    ]);
    expect(created.code, created.stderr).toBe(0);
  });
  afterEach(async () => {
    await host.close();
    await cli.close();
    await rm(keyDir, { recursive: true, force: true });
  });

  it('a changed host key shows in ls ERRORS and from ssh (exit 255) with the trust-host-key command, which then works', async () => {
    await host.stop();
    const impostor = await startOpenSSHServer({ port: host.port, authorizedKeys: [host.clientKey?.publicKey ?? ''] });
    try {
      const hint = `run "machine trust-host-key gen1 --fingerprint ${impostor.hostKeyFingerprint}"`;
      const ls = await cli.run(['ls', '--format', '{{.Name}}|{{.State}}|{{.Error}}']);
      expect(ls.stdout).toContain(`gen1|Error|the SSH host key of machine "gen1" changed (recorded ${host.hostKeyFingerprint}, presented ${impostor.hostKeyFingerprint})`);
      expect(ls.stdout).toContain(hint);
      for (const argv of [['ssh', 'gen1', '--', 'echo', 'should-not-run'], ['--native-ssh', 'ssh', 'gen1', '--', 'echo', 'should-not-run']]) {
        const ssh = await cli.run(argv);
        expect(ssh.code, argv.join(' ')).toBe(255);
        expect(ssh.stdout).toBe('');
        expect(ssh.stderr).toContain('the SSH host key of machine "gen1" changed');
        expect(ssh.stderr).toContain(hint);
        expect(ssh.stderr).not.toContain('is not running');
      }
      expect(await impostor.commands()).toEqual([]);

      const trusted = await cli.run(['trust-host-key', 'gen1', '--fingerprint', impostor.hostKeyFingerprint]);
      expect(trusted, trusted.stderr).toMatchObject({ code: 0 });
      expect(trusted.stdout).toContain(`Recorded ${impostor.hostKeyFingerprint} as the host key of "gen1".`);
      expect(await cli.run(['status', 'gen1'])).toMatchObject({ code: 0, stdout: 'Running\n' });
      expect(await cli.run(['--native-ssh', 'ssh', 'gen1', '--', 'echo', 'trusted'])).toMatchObject({ code: 0, stdout: 'trusted\n' });
      const record = JSON.parse(await readFile(join(cli.storage, 'machines', 'gen1', 'config.json'), 'utf8'));
      expect(record.data.hostKeyFingerprint).toBe(impostor.hostKeyFingerprint);
    } finally {
      await impostor.close();
    }
  });

  it('a refused login shows as that error in ls ERRORS and from ssh, not as "not running"', async () => {
    await host.stop();
    const locked = await startOpenSSHServer({ port: host.port, hostKey: host.hostKey, authorizedKeys: [] });
    try {
      const ls = await cli.run(['ls', '--format', '{{.Name}}|{{.State}}|{{.Error}}']);
      expect(ls.stdout).toMatch(/^gen1\|Error\|.*refused/);
      const ssh = await cli.run(['--native-ssh', 'ssh', 'gen1', '--', 'true']);
      expect(ssh.code).toBe(1);
      expect(ssh.stderr).toMatch(/refused/);
      expect(ssh.stderr).not.toContain('is not running');
    } finally {
      await locked.close();
    }
  });
});
