import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const cliPath = fileURLToPath(new URL('./cli.ts', import.meta.url));
let directory: string | undefined;
afterEach(async () => {
  if (directory !== undefined) await rm(directory, { recursive: true, force: true });
});

async function waitForFile(path: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await readFile(path, 'utf8');
    } catch {
      if (Date.now() > deadline) throw new Error(`${path} never appeared`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

describe('cloud-sim CLI', () => {
  it('writes the state file, prints the env, applies CLOUD_SIM_FAULTS and exits 0 on SIGTERM', async () => {
    directory = await mkdtemp(join(tmpdir(), 'cloud-sim-cli-'));
    const stateFile = join(directory, 'state.json');
    const child = spawn(process.execPath, ['--conditions=@machine/source', cliPath, '--providers', 'digitalocean', '--state-file', stateFile], {
      env: {
        ...process.env,
        CLOUD_SIM_FAULTS: JSON.stringify([{ operation: 'account.get', error: 'auth' }, { instance: 'engineInstallFails', name: 'web1' }]),
        CLOUD_SIM_DOWNLOADS: JSON.stringify({ 'https://example.test/install.sh': '#!/bin/sh\nexit 1\n' }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const state = JSON.parse(await waitForFile(stateFile)) as { pid: number; endpoints: Record<string, string>; sshPort: number; dockerPort: number; env: Record<string, string>; realism: unknown };
    expect(state.pid).toBe(child.pid);
    expect(state.realism).toEqual({ profile: 'realistic', timeScale: 0.01 });
    expect(state.endpoints.digitalocean).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(state.sshPort).toBeGreaterThan(0);
    expect(state.dockerPort).toBeGreaterThan(0);
    expect(state.dockerPort).not.toBe(state.sshPort);
    expect(state.env.CLOUD_SIM_DOCKER_PORT).toBe(String(state.dockerPort));
    expect(state.env.DIGITALOCEAN_API_URL).toBe(state.endpoints.digitalocean);

    const headers = { authorization: 'Bearer t' };
    const faulted = await fetch(`${state.endpoints.digitalocean}/v2/account`, { headers });
    expect(faulted.status).toBe(401);
    expect((await fetch(`${state.endpoints.digitalocean}/v2/account`, { headers })).status).toBe(200);
    expect(stdout).toContain(`export DIGITALOCEAN_API_URL=${state.endpoints.digitalocean}`);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await expect(stat(stateFile)).rejects.toThrow(/ENOENT/);
  });
});
