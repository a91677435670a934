import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sshCredentials } from './ssh-target.ts';

const savedAgent = process.env.SSH_AUTH_SOCK;
afterEach(() => {
  if (savedAgent === undefined) delete process.env.SSH_AUTH_SOCK;
  else process.env.SSH_AUTH_SOCK = savedAgent;
});

describe('sshCredentials', () => {
  it('reads the key file when the machine has one', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'creds-')), 'id_ed25519');
    await writeFile(path, 'KEY', { mode: 0o600 });
    expect(await sshCredentials('web1', path)).toEqual({ privateKey: 'KEY' });
    await expect(sshCredentials('web1', `${path}.missing`)).rejects.toThrow(/cannot read the SSH key of machine "web1" .*ENOENT/);
  });

  it('uses SSH_AUTH_SOCK for agent machines (empty key path), and says so when it is unset', async () => {
    process.env.SSH_AUTH_SOCK = '/tmp/agent.sock';
    expect(await sshCredentials('web1', '')).toEqual({ agent: '/tmp/agent.sock' });
    delete process.env.SSH_AUTH_SOCK;
    await expect(sshCredentials('web1', '')).rejects.toThrow(/logs in with an ssh-agent, but SSH_AUTH_SOCK is not set/);
  });
});
