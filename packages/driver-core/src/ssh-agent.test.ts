import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from './wait.ts';
import { generateSSHKeyPair, writeSSHKeyPair } from './keys.ts';
import { runSSH } from './ssh.ts';
import { type RunningSSHServer, startSSHServer } from './testing/ssh-server.ts';

const hasAgent = (() => {
  try {
    execFileSync('ssh-agent', ['-h'], { stdio: 'ignore' });
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  return true;
})();

// OpenSSH's ssh-agent is installed by .ci/run (openssh-client); without it this cannot run at all.
describe.runIf(hasAgent || process.env.CI === 'true')('runSSH through a real ssh-agent', () => {
  const key = generateSSHKeyPair();
  let dir: string;
  let agent: ChildProcess;
  let socket: string;
  let server: RunningSSHServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agent-'));
    socket = join(dir, 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    for (let tries = 0; !existsSync(socket) && tries < 100; tries++) await sleep(20);
    const keyPath = await writeSSHKeyPair(dir, key);
    execFileSync('ssh-add', [keyPath], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
    server = await startSSHServer({ authorizedKeys: [key.publicKey] });
  });
  afterAll(async () => {
    await server?.close();
    agent?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('authenticates with the agent and no private key', async () => {
    const result = await runSSH({ host: server.host, port: server.port, username: 'root', agent: socket }, 'echo via-agent');
    expect(result).toMatchObject({ code: 0, stdout: 'via-agent\n' });
  });

  it('is refused when the agent holds no accepted key', async () => {
    const other = await startSSHServer({ authorizedKeys: [generateSSHKeyPair().publicKey] });
    try {
      await expect(runSSH({ host: other.host, port: other.port, username: 'root', agent: socket }, 'exit 0')).rejects.toMatchObject({
        failure: 'auth',
      });
    } finally {
      await other.close();
    }
  });
});
