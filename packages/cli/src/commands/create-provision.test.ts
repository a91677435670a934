import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BootConfig, CreateOptions, DriverDescriptor } from '@machine/driver-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from '../test-support/run-cli.ts';

let cli: CliHarness;
beforeEach(async () => {
  cli = await cliHarness();
});
afterEach(async () => {
  await cli.close();
});

describe('create: Docker Engine flags', () => {
  it('refuses --swarm* with one line, before any API call', async () => {
    for (const flag of ['--swarm', '--swarm-master', '--swarm-discovery=token://x']) {
      const result = await cli.run(['create', '-d', 'fake', flag, 'web1']);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`${flag.split('=')[0]}: Swarm classic is not supported (it was retired by Docker); create the machine, then run \`docker swarm init\` on it\n`);
    }
    expect(cli.cloud.leaks()).toEqual([]);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('');
  });

  it('checks engine flags with the driver flags and reports every problem at once', async () => {
    const result = await cli.run(['create', '-d', 'fake', '--engine-port', '0', '--engine-registry-mirror', 'ftp://x', '--fake-size', 'huge', 'web1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--fake-size');
    expect(result.stderr).toContain('--engine-port');
    expect(result.stderr).toContain('--engine-registry-mirror');
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(cli.cloud.leaks()).toEqual([]);
  });

  it('an --engine-opt that contradicts --engine-storage-driver is refused before any API call, and leaves no record', async () => {
    const result = await cli.run(['create', '-d', 'fake', '--engine-storage-driver', 'overlay2', '--engine-opt', 'storage-driver=btrfs', 'web1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('--engine-opt: storage-driver=btrfs contradicts --engine-storage-driver overlay2; keep one\n');
    expect(cli.cloud.leaks()).toEqual([]);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('');
  });

  it('an unusable CA in the store fails create with one line and leaves no half-made record', async () => {
    // A CA key that is not ca.pem's key (hand-edited store): ensureClientCertificates refuses it.
    const certs = join(cli.storage, 'certs');
    await mkdir(certs, { recursive: true });
    const { ensureClientCertificates } = await import('@machine/provision');
    const one = await ensureClientCertificates(join(cli.storage, 'other-a'));
    const two = await ensureClientCertificates(join(cli.storage, 'other-b'));
    await writeFile(join(certs, 'ca.pem'), await readFile(one.caCertPath));
    await writeFile(join(certs, 'ca-key.pem'), await readFile(two.caKeyPath), { mode: 0o600 });
    const result = await cli.run(['create', '-d', 'fake', 'web1']);
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('is not the key of');
    expect((await cli.run(['ls', '-q'])).stdout).toBe('');
    expect(cli.cloud.leaks()).toEqual([]);
  });

  it('create --help lists the Docker Engine flags', async () => {
    const help = await cli.run(['create', '-d', 'fake', '--help']);
    expect(help.stdout).toContain('Docker Engine flags:');
    for (const flag of ['--engine-install-url', '--engine-port', '--engine-opt', '--engine-env', '--engine-insecure-registry', '--engine-registry-mirror', '--engine-label', '--engine-storage-driver', '--tls-san', '--no-provision']) {
      expect(help.stdout).toContain(flag);
    }
    expect(help.stdout).toContain('$MACHINE_DOCKER_INSTALL_URL');
  });

  it('--no-provision records a bare machine: no certificates, env says how to add an engine', async () => {
    expect((await cli.run(['create', '-d', 'fake', '--no-provision', 'bare'])).code).toBe(0);
    const record = JSON.parse(await readFile(join(cli.storage, 'machines', 'bare', 'config.json'), 'utf8'));
    expect(record.provision).toMatchObject({ state: 'skipped', dockerPort: 2376 });
    await expect(stat(join(cli.storage, 'certs', 'ca.pem'))).rejects.toThrow();
    expect((await cli.run(['env', '--shell', 'bash', 'bare'])).stderr).toContain('"machine provision bare" installs one');
  });
});

describe('create: --no-provision on a driver that takes cloud-init user data', () => {
  it('still boots the machine with a host key made by the CLI and pins it from the first connection', async () => {
    const boots: (BootConfig | undefined)[] = [];
    const base = cli.drivers.fake as DriverDescriptor;
    const withUserData: DriverDescriptor = {
      ...base,
      capabilities: { userData: true },
      createDriver: (args) => {
        const inner = base.createDriver(args);
        return new Proxy(inner, {
          get(target, property) {
            if (property === 'create') {
              return (options?: CreateOptions) => {
                boots.push(options?.boot);
                return target.create(options);
              };
            }
            const value: unknown = Reflect.get(target, property, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      },
    };
    cli.drivers.fake = withUserData;
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', 'bare']);
    const boot = boots[0];
    expect(boot?.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(boot?.userData).toMatch(/^#cloud-config\n/);
    expect(boot?.userData).toContain('ed25519_private: |');
    expect(boot?.userData).not.toContain('runcmd');
    // The fake cloud's sshd does not apply cloud-init, so it presents another key: the pinned first connection refuses it.
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`changed: expected ${boot?.hostKeyFingerprint}, got SHA256:`);
    // The driver cleaned up what it made, so nothing is recorded or left at the provider.
    expect((await cli.run(['ls', '-q'])).stdout).toBe('');
    expect(cli.cloud.leaks()).toEqual([]);
  });
});

describe('create: a non-default --engine-port', () => {
  it('is added to the driver\'s open ports, so its firewall lets the docker client in', async () => {
    await cli.run(['create', '-d', 'fake', '--engine-port', '2377', '--fake-open-port', '8080', 'web2']);
    const record = JSON.parse(await readFile(join(cli.storage, 'machines', 'web2', 'config.json'), 'utf8'));
    expect(record.config.openPorts).toEqual(['8080', '2377']);
    expect(record.provision).toMatchObject({ dockerPort: 2377, engine: { port: 2377 } });
    expect((await cli.run(['rm', '-y', 'web2'])).code).toBe(0);
    expect(cli.cloud.leaks()).toEqual([]);
  });
});

describe('create: a provisioning failure keeps the machine', () => {
  it('exits 1 with the ProvisionError line, records Error with the hint, and rm removes it all', async () => {
    // The fake cloud's SSH server has no Docker and no way to install it: provisioning fails.
    const result = await cli.run(['create', '-d', 'fake', '--engine-install-url', 'https://get.docker.com', 'web1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^provisioning web1 failed at [a-z-]+: /);
    expect(result.stderr).toContain('The machine "web1" is kept: run "machine provision web1" to retry, or "machine rm web1"\n');
    const dir = join(cli.storage, 'machines', 'web1');
    expect((await stat(join(cli.storage, 'certs', 'ca-key.pem'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'server-key.pem'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'key.pem'))).mode & 0o777).toBe(0o600);
    for (const file of ['ca.pem', 'cert.pem', 'server.pem']) expect(await readFile(join(dir, file), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const record = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    expect(record.status).toBe('ready');
    expect(record.provision).toMatchObject({ state: 'failed', serverCertSans: expect.arrayContaining(['127.0.0.1', 'localhost']) });
    const ls = await cli.run(['ls']);
    expect(ls.stdout).toMatch(/web1\s+-\s+fake\s+Error\s+Unknown\s+provisioning web1 failed at .*; run "machine provision web1" to retry, or "machine rm web1"\n/);
    const env = await cli.run(['env', '--shell', 'bash', 'web1']);
    expect(env.code).toBe(1);
    expect(env.stderr).toContain('run "machine provision web1" to retry, or "machine rm web1"');
    expect((await cli.run(['rm', '-y', 'web1'])).code).toBe(0);
    expect(cli.cloud.leaks()).toEqual([]);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('');
  });
});
