import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidConfigError, parseFlags } from '@machine/driver-core';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildCloudConfig } from './cloud-config.ts';
import { daemonConfig, systemdDropIn } from './daemon-config.ts';
import { type EngineOptions, engineOptionsFrom, provisionFlags } from './engine-options.ts';
import { generateHostKey } from './host-key.ts';

function engine(values: Record<string, unknown> = {}, env: Record<string, string> = {}): EngineOptions {
  return engineOptionsFrom(parseFlags(provisionFlags, values, { env }));
}

function configError(run: () => unknown): InvalidConfigError {
  try {
    run();
  } catch (error) {
    if (InvalidConfigError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected an InvalidConfigError');
}

describe('provisionFlags', () => {
  it('declares the reference names, env vars and defaults', () => {
    const byName = Object.fromEntries(provisionFlags.map((definition) => [definition.name, definition]));
    expect(Object.keys(byName)).toEqual([
      'engine-install-url',
      'engine-port',
      'engine-opt',
      'engine-env',
      'engine-insecure-registry',
      'engine-registry-mirror',
      'engine-label',
      'engine-storage-driver',
      'tls-san',
      'no-provision',
    ]);
    expect(byName['engine-install-url']).toMatchObject({ envVar: 'MACHINE_DOCKER_INSTALL_URL', default: 'https://get.docker.com', type: 'string' });
    expect(byName['engine-port']).toMatchObject({ type: 'int', default: 2376, min: 1, max: 65535 });
    expect(byName['engine-registry-mirror']).toMatchObject({ envVar: 'ENGINE_REGISTRY_MIRROR', type: 'string[]' });
    expect(byName['no-provision']).toMatchObject({ type: 'bool' });
    for (const name of ['engine-opt', 'engine-env', 'engine-insecure-registry', 'engine-label', 'tls-san']) expect(byName[name]?.type).toBe('string[]');
  });

  it('parses to EngineOptions with defaults', () => {
    expect(engine()).toEqual({
      installUrl: 'https://get.docker.com',
      port: 2376,
      opts: [],
      env: [],
      insecureRegistries: [],
      registryMirrors: [],
      labels: [],
      tlsSans: [],
      noProvision: false,
    });
  });

  it('reads env vars and repeatable values, keeping KEY=a,b values whole', () => {
    const options = engine(
      {
        'engine-port': '12376',
        'engine-env': ['HTTP_PROXY=http://proxy:3128', 'NO_PROXY=localhost,127.0.0.1'],
        'engine-label': ['env=prod', 'team=a,b'],
        'engine-opt': ['log-driver=journald', 'debug', 'default-address-pool=base=10.10.0.0/16,size=24'],
        'engine-storage-driver': 'overlay2',
        'tls-san': ['docker.example.com', '10.0.0.5'],
        'no-provision': true,
      },
      { MACHINE_DOCKER_INSTALL_URL: 'https://test.docker.com', ENGINE_REGISTRY_MIRROR: 'https://mirror.example.com' },
    );
    expect(options).toEqual({
      installUrl: 'https://test.docker.com',
      port: 12376,
      opts: ['log-driver=journald', 'debug', 'default-address-pool=base=10.10.0.0/16,size=24'],
      env: ['HTTP_PROXY=http://proxy:3128', 'NO_PROXY=localhost,127.0.0.1'],
      insecureRegistries: [],
      registryMirrors: ['https://mirror.example.com'],
      labels: ['env=prod', 'team=a,b'],
      storageDriver: 'overlay2',
      tlsSans: ['docker.example.com', '10.0.0.5'],
      noProvision: true,
    });
  });

  it('reports every bad flag on one line each', () => {
    const error = configError(() =>
      engine({
        'engine-port': 70000,
        'engine-install-url': "https://x.example.com/it's",
        'engine-opt': ['hosts=tcp://0.0.0.0:2375'],
        'engine-env': ['1BAD=x'],
        'tls-san': ['not a name'],
      }),
    );
    expect(error.issues.map((issue) => issue.flag)).toEqual(['engine-install-url', 'engine-port', 'engine-opt', 'engine-env', 'tls-san']);
    for (const issue of error.issues) expect(issue.message).not.toContain('\n');
    expect(error.issues.find((issue) => issue.flag === 'engine-opt')?.message).toBe('"hosts" cannot be overridden: use --engine-port to change the port');
  });

  it('engineOptionsFrom checks a hand-written object too', () => {
    expect(configError(() => engineOptionsFrom({ enginePort: 0 })).message).toContain('--engine-port: must be a whole number from 1 to 65535');
    expect(configError(() => engineOptionsFrom({ engineOpt: ['tlsverify=false'] })).message).toContain('"tlsverify" cannot be overridden');
  });
});

describe('daemonConfig', () => {
  it('listens on the socket and TLS port with the machine certificates; empty keys are left out', () => {
    expect(daemonConfig(engine({ 'engine-port': 2377 }))).toEqual({
      hosts: ['unix:///var/run/docker.sock', 'tcp://0.0.0.0:2377'],
      tls: true,
      tlsverify: true,
      tlscacert: '/etc/docker/ca.pem',
      tlscert: '/etc/docker/server.pem',
      tlskey: '/etc/docker/server-key.pem',
    });
  });

  it('maps --engine-opt onto daemon.json keys and types', () => {
    const config = daemonConfig(
      engine({
        'engine-label': ['env=prod'],
        'engine-insecure-registry': ['registry.local:5000'],
        'engine-registry-mirror': ['https://mirror.example.com'],
        'engine-storage-driver': 'overlay2',
        'engine-opt': [
          'log-driver=json-file',
          'log-opt=max-size=10m',
          'log-opt=max-file=3',
          'dns=1.1.1.1',
          'dns=8.8.8.8',
          'data-root=/data/docker',
          'default-ulimit=nofile=1024:2048',
          'max-concurrent-downloads=10',
          'debug',
          'ipv6=false',
          'mtu=1450',
          'bip=172.26.0.1/16',
          'experimental=true',
          'label=tier=web',
          '--insecure-registry=other.local',
          'default-address-pool=base=10.10.0.0/16,size=24',
          'feature=containerd-snapshotter=true',
        ],
      }),
    );
    expect(config).toMatchObject({
      labels: ['env=prod', 'tier=web'],
      'insecure-registries': ['registry.local:5000', 'other.local'],
      'registry-mirrors': ['https://mirror.example.com'],
      'storage-driver': 'overlay2',
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '10m', 'max-file': '3' },
      dns: ['1.1.1.1', '8.8.8.8'],
      'data-root': '/data/docker',
      'default-ulimits': { nofile: { Name: 'nofile', Soft: 1024, Hard: 2048 } },
      'max-concurrent-downloads': 10,
      debug: true,
      ipv6: false,
      mtu: 1450,
      bip: '172.26.0.1/16',
      experimental: true,
      'default-address-pools': [{ base: '10.10.0.0/16', size: 24 }],
      features: { 'containerd-snapshotter': true },
    });
    expect(config.hosts).toEqual(['unix:///var/run/docker.sock', 'tcp://0.0.0.0:2376']);
  });

  it.each([
    ['hosts=tcp://0.0.0.0:2375', '"hosts" cannot be overridden: use --engine-port to change the port'],
    ['tlscert=/tmp/x.pem', '"tlscert" cannot be overridden'],
    ['tls=false', '"tls" cannot be overridden'],
    ['no-such-option=1', '"no-such-option" is not a dockerd option machine knows'],
    ['log-drivr=journald', 'did you mean log-driver'],
    ['mtu=big', '"mtu" is a whole number, got "big"'],
    ['debug=maybe', '"debug" is true or false, got "maybe"'],
    ['log-driver', '"log-driver" needs a value: log-driver=VALUE'],
    ['log-opt=max-size', '"log-opt" takes name=value'],
    ['default-ulimit=nofile', '"default-ulimit" takes NAME=SOFT[:HARD]'],
    ['=x', 'has no option name'],
  ])('rejects --engine-opt %s with one line', (opt, expected) => {
    const error = configError(() => daemonConfig({ ...engine(), opts: [opt] }));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.flag).toBe('engine-opt');
    expect(error.message).toContain(expected);
    expect(error.message).not.toContain('\n');
  });

  it('refuses a storage-driver opt that contradicts --engine-storage-driver', () => {
    expect(configError(() => daemonConfig(engine({ 'engine-storage-driver': 'overlay2', 'engine-opt': ['storage-driver=btrfs'] }))).message).toContain(
      'contradicts --engine-storage-driver',
    );
  });
});

describe('systemdDropIn', () => {
  it('clears ExecStart, starts dockerd without -H and sets --engine-env', () => {
    const text = systemdDropIn(engine({ 'engine-env': ['HTTP_PROXY=http://proxy:3128', 'QUOTED=a "b" 100%'] }));
    const lines = text.split('\n').filter((line) => !line.startsWith('#') && line !== '');
    expect(lines).toEqual([
      '[Service]',
      'ExecStart=',
      'ExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock',
      'Environment="HTTP_PROXY=http://proxy:3128"',
      'Environment="QUOTED=a \\"b\\" 100%%"',
    ]);
    expect(text).not.toContain('-H');
  });
});

describe('generateHostKey', () => {
  it('makes an ed25519 OpenSSH key whose public line and SHA256 fingerprint match', () => {
    const key = generateHostKey('web1');
    expect(key.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(key.publicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ web1$/);
    const parsed = ssh2.utils.parseKey(key.privateKey);
    if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('unparseable key');
    expect(parsed.type).toBe('ssh-ed25519');
    expect(parsed.isPrivateKey()).toBe(true);
    const blob = parsed.getPublicSSH();
    expect(blob.toString('base64')).toBe(key.publicKey.split(' ')[1]);
    expect(key.fingerprint).toBe(`SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`);
    const signature = parsed.sign(Buffer.from('challenge'));
    expect(parsed.verify(Buffer.from('challenge'), signature)).toBe(true);
    expect(generateHostKey().fingerprint).not.toBe(key.fingerprint);
  });
});

describe('generateHostKey with OpenSSH', () => {
  it('ssh-keygen reads the private key and prints the same public key and fingerprint (when installed)', (context) => {
    try {
      execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        context.skip('ssh-keygen is not installed');
        return;
      }
    }
    const key = generateHostKey('web1');
    const dir = mkdtempSync(join(tmpdir(), 'provision-hostkey-'));
    try {
      const path = join(dir, 'ssh_host_ed25519_key');
      writeFileSync(path, key.privateKey, { mode: 0o600 });
      expect(execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim().split(' ').slice(0, 2)).toEqual(key.publicKey.split(' ').slice(0, 2));
      expect(execFileSync('ssh-keygen', ['-l', '-f', path], { encoding: 'utf8' })).toContain(key.fingerprint);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('buildCloudConfig', () => {
  it('is #cloud-config YAML with the host key, daemon.json, the drop-in and one engine runcmd', () => {
    const hostKey = generateHostKey();
    const options = engine({ 'engine-label': ['env=prod'], 'engine-env': ['NO_PROXY=a,b'] });
    const text = buildCloudConfig({ engine: options, hostKey });
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const config = parse(text) as {
      ssh_deletekeys: boolean;
      ssh_keys: { ed25519_private: string; ed25519_public: string };
      write_files: { path: string; content: string; permissions: string; owner: string }[];
      runcmd: string[][];
    };
    expect(Object.keys(config)).toEqual(['ssh_deletekeys', 'ssh_keys', 'write_files', 'runcmd']);
    expect(config.ssh_deletekeys).toBe(true);
    expect(config.ssh_keys.ed25519_private).toBe(hostKey.privateKey);
    expect(config.ssh_keys.ed25519_public).toBe(hostKey.publicKey);
    // The pair in the user data is the one whose fingerprint the driver pins.
    const parsed = ssh2.utils.parseKey(config.ssh_keys.ed25519_private);
    if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('unparseable key');
    expect(`SHA256:${createHash('sha256').update(parsed.getPublicSSH()).digest('base64').replace(/=+$/, '')}`).toBe(hostKey.fingerprint);
    expect(config.write_files.map((file) => [file.path, file.permissions, file.owner])).toEqual([
      ['/etc/docker/daemon.json', '0644', 'root:root'],
      ['/etc/systemd/system/docker.service.d/10-machine.conf', '0644', 'root:root'],
    ]);
    expect(JSON.parse(config.write_files[0]?.content ?? '')).toEqual(daemonConfig(options));
    expect(config.write_files[1]?.content).toBe(systemdDropIn(options));
    expect(config.runcmd).toEqual([
      ['sh', '-c', "curl -fsSL 'https://get.docker.com' -o /tmp/install-docker.sh && sh /tmp/install-docker.sh"],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', 'docker'],
    ]);
  });

  it('PyYAML (what cloud-init parses with) reads the same document (when python3-yaml is installed)', (context) => {
    const text = buildCloudConfig({ engine: engine({ 'engine-env': ['NO_PROXY=a,b'], 'engine-opt': ['log-opt=max-size=10m'] }), hostKey: generateHostKey() });
    let output: string;
    try {
      output = execFileSync('python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
    } catch {
      context.skip('python3 with PyYAML is not installed');
      return;
    }
    expect(JSON.parse(output)).toEqual(parse(text));
  });

  it('with --no-provision carries only the host key; without a host key, no ssh_keys', () => {
    const hostKey = generateHostKey();
    const bare = parse(buildCloudConfig({ engine: engine({ 'no-provision': true }), hostKey })) as Record<string, unknown>;
    expect(Object.keys(bare)).toEqual(['ssh_deletekeys', 'ssh_keys']);
    const noKey = parse(buildCloudConfig({ engine: engine() })) as Record<string, unknown>;
    expect(Object.keys(noKey)).toEqual(['write_files', 'runcmd']);
  });
});
