import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

let cli: CliHarness;
let server: Server;
let url: string;
beforeEach(async () => {
  cli = await cliHarness();
  server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
  await cli.close();
});

describe('the none driver, found among the CLI\'s dependencies', () => {
  it('records a URL without SSH, shows it in ls and env, refuses lifecycle actions, and removes the record', async () => {
    const created = await cli.run(['create', '-d', 'none', '--url', url, 'ext']);
    expect(created.code, created.stderr).toBe(0);
    // No SSH: nothing is provisioned, no certificate is made, and the record has no provision block.
    expect(created.stdout).not.toContain('Provisioning');
    const record = JSON.parse(await readFile(join(cli.storage, 'machines', 'ext', 'config.json'), 'utf8'));
    expect(record.provision).toBeUndefined();
    expect(existsSync(join(cli.storage, 'certs'))).toBe(false);
    expect((await cli.run(['ls', '--format', '{{.Name}} {{.DriverName}} {{.State}} {{.URL}} {{.DockerVersion}}'])).stdout).toBe(`ext none Running ${url} Unknown\n`);
    expect((await cli.run(['url', 'ext'])).stdout).toBe(`${url}\n`);
    expect((await cli.run(['env', '--shell', 'bash', 'ext'])).stdout).toContain(`export DOCKER_HOST="${url}"`);
    const stop = await cli.run(['stop', 'ext']);
    expect(stop.code).toBe(1);
    expect(stop.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stop.stderr).toContain('machine "ext"');
    expect((await cli.run(['rm', '-y', 'ext'])).code).toBe(0);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('');
  });

  it('rejects a bad --url before anything is recorded', async () => {
    const result = await cli.run(['create', '-d', 'none', '--url', 'not a url', 'ext']);
    expect(result).toMatchObject({ code: 1, stderr: '--url: "not a url" is not a URL; expected e.g. tcp://10.0.0.5:2376\n' });
    expect((await cli.run(['ls', '-q'])).stdout).toBe('');
  });
});
