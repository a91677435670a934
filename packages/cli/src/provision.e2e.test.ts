import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSSHKeyPair, sha256Fingerprint } from '@machine/driver-core/keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Issue 11 end to end: the built `machine` binary provisions Docker hosts on the cloud simulator's
 * "booted image" (cloud-init host key, engine install, TLS dockerd that requires the client
 * certificate), and the Docker API is called over TLS with exactly what `machine env` prints.
 * The simulator daemon gets its faults from CLOUD_SIM_FAULTS: the instance `broken` fails to
 * install the engine, and `mover` gets a new IP on every start (on EC2: the DigitalOcean driver
 * keeps the IP it saw at create in its data, so it would not see the change).
 */
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = join(packageDir, 'dist', 'bin.js');
let work: string;
let store: string;
let env: NodeJS.ProcessEnv;

function machine(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...env, ...extraEnv }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** The variables of `machine env --shell bash NAME`, parsed from its `export K="V"` lines. */
async function dockerEnv(name: string): Promise<Record<string, string>> {
  const result = await machine(['env', '--shell', 'bash', name]);
  expect(result.code, result.stderr).toBe(0);
  const vars: Record<string, string> = {};
  for (const match of result.stdout.matchAll(/^export ([A-Z_]+)="(.*)"$/gm)) vars[match[1] as string] = match[2] as string;
  return vars;
}

/** GET `path` from DOCKER_HOST over TLS with DOCKER_CERT_PATH's ca.pem, cert.pem and key.pem, as the docker CLI does. */
async function dockerGet(vars: Record<string, string>, path: string, options: { clientCert?: boolean } = {}): Promise<{ status: number; body: string }> {
  expect(vars.DOCKER_TLS_VERIFY).toBe('1');
  const url = new URL((vars.DOCKER_HOST ?? '').replace(/^tcp:/, 'https:'));
  const certPath = vars.DOCKER_CERT_PATH ?? '';
  const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((file) => readFile(join(certPath, file), 'utf8')));
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: Number(url.port), path, method: 'GET', ca, ...(options.clientCert === false ? {} : { cert, key }), servername: '', timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Every droplet, key and firewall the simulated DigitalOcean account still has. */
async function leaks(): Promise<string[]> {
  const state = JSON.parse(await readFile(join(store, 'sim', 'state.json'), 'utf8')) as { env: Record<string, string> };
  const headers = { authorization: `Bearer ${state.env.DIGITALOCEAN_ACCESS_TOKEN}` };
  const found: string[] = [];
  for (const [path, key] of [['/v2/droplets', 'droplets'], ['/v2/account/keys', 'ssh_keys'], ['/v2/firewalls', 'firewalls']] as const) {
    const body = (await (await fetch(`${state.env.DIGITALOCEAN_API_URL}${path}`, { headers })).json()) as Record<string, { id: string | number }[]>;
    expect(Array.isArray(body[key]), `${path} lists ${key}`).toBe(true);
    for (const item of body[key] ?? []) found.push(`${key} ${item.id}`);
  }
  return found;
}

async function readRecord(name: string): Promise<{ ssh: { hostKeyFingerprint: string; hostKey: string }; provision: { state: string; serverCertSans: string[]; dockerPort: number } }> {
  return JSON.parse(await readFile(join(store, 'machines', name, 'config.json'), 'utf8'));
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'machine-provision-e2e-'));
  store = join(work, 'store');
  env = {
    PATH: process.env.PATH,
    HOME: work,
    MACHINE_STORAGE_PATH: store,
    CLOUD_SIM_FAULTS: JSON.stringify([
      { instance: 'engineInstallFails', name: 'broken' },
      { instance: 'ipChangesOnStart', name: 'mover' },
    ]),
  };
});

afterAll(async () => {
  await machine(['sim', 'stop']);
  await rm(work, { recursive: true, force: true });
});

describe('machine create provisions a Docker host on the simulator (digitalocean)', { timeout: 180_000 }, () => {
  it('create → env for every shell → the Docker API over TLS with exactly those variables → ls DOCKER → regenerate-certs → provision', async () => {
    const created = await machine(['create', '-d', 'digitalocean', '--sim', 'web']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('Provisioning Docker Engine on "web"...');
    expect(created.stdout).toContain('Machine "web" is ready: `eval $(machine env web)` points the docker client at it.');
    const state = JSON.parse(await readFile(join(store, 'sim', 'state.json'), 'utf8')) as { dockerPort: number };
    expect(state.dockerPort).toBeGreaterThan(0);
    const record = await readRecord('web');
    expect(record.provision).toMatchObject({ state: 'provisioned', dockerPort: state.dockerPort });
    expect(record.ssh.hostKeyFingerprint).toMatch(/^SHA256:/);
    // The host key was made by the CLI and pinned from the first connection: known_hosts has it.
    expect(await readFile(join(store, 'machines', 'web', 'known_hosts'), 'utf8')).toBe(`machine-web ${record.ssh.hostKey}\n`);

    const vars = await dockerEnv('web');
    const dir = join(store, 'machines', 'web');
    expect(vars).toEqual({ DOCKER_TLS_VERIFY: '1', DOCKER_HOST: expect.stringMatching(new RegExp(`^tcp://127\\.1\\.\\d+\\.\\d+:${state.dockerPort}$`)), DOCKER_CERT_PATH: dir, DOCKER_MACHINE_NAME: 'web' });
    const host = vars.DOCKER_HOST as string;
    const expected: Record<string, string> = {
      bash: `export DOCKER_TLS_VERIFY="1"\nexport DOCKER_HOST="${host}"\nexport DOCKER_CERT_PATH="${dir}"\nexport DOCKER_MACHINE_NAME="web"\n# Run this command to configure your shell: \n# eval $(machine env --shell bash web)\n`,
      zsh: `export DOCKER_TLS_VERIFY="1"\nexport DOCKER_HOST="${host}"\nexport DOCKER_CERT_PATH="${dir}"\nexport DOCKER_MACHINE_NAME="web"\n# Run this command to configure your shell: \n# eval $(machine env --shell zsh web)\n`,
      sh: `export DOCKER_TLS_VERIFY="1"\nexport DOCKER_HOST="${host}"\nexport DOCKER_CERT_PATH="${dir}"\nexport DOCKER_MACHINE_NAME="web"\n# Run this command to configure your shell: \n# eval $(machine env --shell sh web)\n`,
      fish: `set -gx DOCKER_TLS_VERIFY "1";\nset -gx DOCKER_HOST "${host}";\nset -gx DOCKER_CERT_PATH "${dir}";\nset -gx DOCKER_MACHINE_NAME "web";\n# Run this command to configure your shell: \n# eval (machine env --shell fish web)\n`,
      powershell: `$Env:DOCKER_TLS_VERIFY = "1"\n$Env:DOCKER_HOST = "${host}"\n$Env:DOCKER_CERT_PATH = "${dir}"\n$Env:DOCKER_MACHINE_NAME = "web"\n# Run this command to configure your shell: \n# & machine env --shell powershell web | Invoke-Expression\n`,
      cmd: `SET DOCKER_TLS_VERIFY=1\nSET DOCKER_HOST=${host}\nSET DOCKER_CERT_PATH=${dir}\nSET DOCKER_MACHINE_NAME=web\nREM Run this command to configure your shell: \nREM \t@FOR /f "tokens=*" %i IN ('machine env --shell cmd web') DO @%i\n`,
      tcsh: `setenv DOCKER_TLS_VERIFY "1";\nsetenv DOCKER_HOST "${host}";\nsetenv DOCKER_CERT_PATH "${dir}";\nsetenv DOCKER_MACHINE_NAME "web";\n: Run this command to configure your shell: \n: eval \`machine env --shell tcsh web\`\n`,
      emacs: `(setenv "DOCKER_TLS_VERIFY" "1")\n(setenv "DOCKER_HOST" "${host}")\n(setenv "DOCKER_CERT_PATH" "${dir}")\n(setenv "DOCKER_MACHINE_NAME" "web")\n;; Run this command to configure your shell: \n;; (with-temp-buffer (shell-command "machine env --shell emacs web" (current-buffer)) (eval-buffer))\n`,
    };
    for (const [shell, text] of Object.entries(expected)) {
      const result = await machine(['env', '--shell', shell, 'web']);
      expect({ shell, code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ shell, code: 0, stdout: text, stderr: '' });
    }
    expect((await machine(['env', 'web'], { SHELL: '/usr/bin/fish' })).stdout).toBe(expected.fish?.replace('machine env --shell fish web', 'machine env web'));

    // The Docker API, over TLS, with exactly those variables.
    const version = await dockerGet(vars, '/version');
    expect(version.status).toBe(200);
    expect(JSON.parse(version.body)).toMatchObject({ Version: '27.3.1', ApiVersion: '1.47', Os: 'linux', Arch: 'amd64' });
    expect(await dockerGet(vars, '/_ping')).toEqual({ status: 200, body: 'OK' });
    // dockerd requires the client certificate.
    await expect(dockerGet(vars, '/version', { clientCert: false })).rejects.toThrow();

    expect((await machine(['url', 'web'])).stdout).toBe(`${host}\n`);
    expect((await machine(['config', 'web'])).stdout).toBe(`--tlsverify\n--tlscacert="${dir}/ca.pem"\n--tlscert="${dir}/cert.pem"\n--tlskey="${dir}/key.pem"\n-H=${host}\n`);
    const ls = await machine(['ls']);
    expect(ls.stdout).toMatch(/^NAME\s+ACTIVE\s+DRIVER\s+STATE\s+URL\s+DOCKER\s+ERRORS\n/);
    expect(ls.stdout).toMatch(new RegExp(`\\nweb\\s+-\\s+digitalocean\\s+Running\\s+${host.replace(/\./g, '\\.')}\\s+v27\\.3\\.1\\n`));
    // After `eval $(machine env web)`, ls marks it active.
    expect((await machine(['ls'], { DOCKER_HOST: host })).stdout).toMatch(/\nweb\s+\*\s+digitalocean\s+Running\s/);
    expect((await machine(['ls', '--format', '{{.Name}} {{.DockerVersion}}'])).stdout).toBe('web v27.3.1\n');
    expect((await machine(['active'], { DOCKER_HOST: host })).stdout).toBe('web\n');
    // `version NAME`: the machine's engine version, like the reference; without a name, the CLI's.
    expect(await machine(['version', 'web'])).toMatchObject({ code: 0, stdout: '27.3.1\n', stderr: '' });
    expect((await machine(['version'])).stdout).toMatch(/^machine version \d+\.\d+\.\d+/);

    // regenerate-certs: a new server certificate, the API still answers with the same variables.
    const before = await readFile(join(dir, 'server.pem'), 'utf8');
    const regenerated = await machine(['regenerate-certs', '-f', 'web']);
    expect(regenerated.code, regenerated.stderr).toBe(0);
    expect(regenerated.stdout).toContain('Regenerating TLS certificates');
    expect(await readFile(join(dir, 'server.pem'), 'utf8')).not.toBe(before);
    expect((await dockerGet(vars, '/version')).status).toBe(200);

    // provision again (over SSH this time; the engine is there already).
    const again = await machine(['provision', 'web']);
    expect(again.code, again.stderr).toBe(0);
    expect((await dockerGet(vars, '/_ping')).body).toBe('OK');

    // A stopped machine: the reference's "Host is not running", exit 1.
    expect((await machine(['stop', 'web'])).code).toBe(0);
    expect(await machine(['version', 'web'])).toMatchObject({ code: 1, stdout: '', stderr: 'Host is not running\n' });

    expect((await machine(['rm', '-y', 'web'])).code).toBe(0);
  });

  it('refuses a changed SSH host key everywhere, says how to accept it, and trust-host-key records it only when the fingerprint matches', async () => {
    expect((await machine(['create', '-d', 'digitalocean', '--sim', 'keyed'])).code).toBe(0);
    const record = await readRecord('keyed');
    const real = record.ssh.hostKeyFingerprint;
    // Make the recorded key (config.json and known_hosts) another one: the machine now presents a key we did not pin.
    const other = generateSSHKeyPair({ comment: 'old' }).publicKey.split(' ').slice(0, 2).join(' ');
    const otherFingerprint = sha256Fingerprint(Buffer.from(other.split(' ')[1] as string, 'base64'));
    const configPath = join(store, 'machines', 'keyed', 'config.json');
    const raw = JSON.parse(await readFile(configPath, 'utf8'));
    raw.ssh.hostKeyFingerprint = otherFingerprint;
    raw.ssh.hostKey = other;
    await writeFile(configPath, JSON.stringify(raw, null, 4));
    await writeFile(join(store, 'machines', 'keyed', 'known_hosts'), `machine-keyed ${other}\n`);

    const hint = `run "machine trust-host-key keyed --fingerprint ${real}"`;
    const changed = `the SSH host key of machine "keyed" changed (recorded ${otherFingerprint}, presented ${real}): refusing to connect`;
    const openssh = await machine(['ssh', 'keyed', '--', 'echo', 'should-not-run']);
    expect(openssh.code, openssh.stderr).toBe(255);
    expect(openssh.stdout).toBe('');
    expect(openssh.stderr).toContain(changed);
    expect(openssh.stderr).toContain(hint);
    for (const args of [['--native-ssh', 'ssh', 'keyed', '--', 'echo', 'no'], ['scp', 'keyed:/etc/hostname', join(work, 'h')], ['provision', 'keyed'], ['regenerate-certs', '-f', 'keyed']]) {
      const result = await machine(args);
      expect(result.code, args.join(' ')).toBe(args.includes('ssh') ? 255 : 1);
      expect(result.stdout, args.join(' ')).not.toContain('no\n');
      expect(result.stderr, args.join(' ')).toContain(changed);
      expect(result.stderr, args.join(' ')).toContain(hint);
    }

    const show = await machine(['trust-host-key', 'keyed']);
    expect(show.code).toBe(1);
    expect(show.stdout).toContain(`presents the host key ${real} (ssh-ed25519)`);
    expect(show.stderr).toContain(`"machine trust-host-key keyed --fingerprint ${real}"`);
    const wrong = await machine(['trust-host-key', 'keyed', '--fingerprint', otherFingerprint]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('does not match');
    expect((await readRecord('keyed')).ssh.hostKeyFingerprint).toBe(otherFingerprint);
    const accepted = await machine(['trust-host-key', 'keyed', '--fingerprint', real]);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect((await readRecord('keyed')).ssh.hostKeyFingerprint).toBe(real);
    expect((await machine(['ssh', 'keyed', '--', 'echo', 'trusted'])).stdout).toBe('trusted\n');
    expect((await machine(['--native-ssh', 'ssh', 'keyed', '--', 'echo', 'trusted'])).stdout).toBe('trusted\n');
    expect((await machine(['rm', '-y', 'keyed'])).code).toBe(0);
  });

  it('a new IP after stop/start (amazonec2) gets a new server certificate automatically, and the Docker API works again', async () => {
    const created = await machine(['create', '-d', 'amazonec2', '--sim', 'mover']);
    expect(created.code, created.stderr).toBe(0);
    const first = await dockerEnv('mover');
    expect((await dockerGet(first, '/_ping')).status).toBe(200);
    expect((await machine(['stop', 'mover'])).code).toBe(0);
    const started = await machine(['start', 'mover']);
    expect(started.code, started.stderr).toBe(0);
    const ip = (await machine(['ip', 'mover'])).stdout.trim();
    expect(first.DOCKER_HOST).not.toContain(`//${ip}:`);
    expect(started.stdout).toContain(`The IP of "mover" changed to ${ip}: issuing a new server certificate and installing it...`);
    const sans = new X509Certificate(await readFile(join(store, 'machines', 'mover', 'server.pem'))).subjectAltName ?? '';
    expect(sans).toContain(`IP Address:${ip}`);
    expect((await readRecord('mover')).provision.serverCertSans).toContain(ip);
    const second = await dockerEnv('mover');
    expect(second.DOCKER_HOST).toContain(`//${ip}:`);
    const version = await dockerGet(second, '/version');
    expect(version.status).toBe(200);
    expect((await machine(['ls', '--filter', 'name=mover', '--format', '{{.DockerVersion}}'])).stdout).toBe('v27.3.1\n');
    expect((await machine(['rm', '-y', 'mover'])).code).toBe(0);
  });

  it('generic (no cloud-init): the first host key is recorded, the engine is installed over SSH, the Docker API answers', async () => {
    // A bare simulated droplet plays the existing host generic takes over.
    expect((await machine(['create', '-d', 'digitalocean', '--sim', '--no-provision', 'host'])).code).toBe(0);
    const state = JSON.parse(await readFile(join(store, 'sim', 'state.json'), 'utf8')) as { sshPort: number; dockerPort: number };
    const ip = (await machine(['ip', 'host'])).stdout.trim();
    const created = await machine([
      'create', '-d', 'generic',
      '--generic-ip-address', ip,
      '--generic-ssh-port', String(state.sshPort),
      '--generic-ssh-key', join(store, 'machines', 'host', 'id_ed25519'),
      '--generic-engine-port', String(state.dockerPort),
      'adopted',
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('installing Docker Engine from https://get.docker.com');
    const record = await readRecord('adopted');
    // Trust on first use: the key the driver saw first, the same one the bare droplet's record pinned.
    expect(record.ssh.hostKeyFingerprint).toBe((await readRecord('host')).ssh.hostKeyFingerprint);
    expect(record.provision).toMatchObject({ state: 'provisioned', dockerPort: state.dockerPort });
    const vars = await dockerEnv('adopted');
    expect(vars.DOCKER_HOST).toBe(`tcp://${ip}:${state.dockerPort}`);
    expect(JSON.parse((await dockerGet(vars, '/version')).body)).toMatchObject({ Version: '27.3.1' });
    expect((await machine(['rm', '-y', 'adopted'])).code).toBe(0);
    expect((await machine(['rm', '-y', 'host'])).code).toBe(0);
  });

  it('an engine install failure: exit 1 with the log tail, kept as Error with the hint, and rm leaves the account empty', async () => {
    const created = await machine(['create', '-d', 'digitalocean', '--sim', '--digitalocean-firewall', 'broken']);
    expect(created.code).toBe(1);
    expect(created.stderr).toMatch(/^provisioning broken failed at cloud-init: /);
    expect(created.stderr).toContain('Last lines of the provisioning log on the machine:');
    expect(created.stderr).toContain('Unable to locate package docker-ce');
    expect(created.stderr).toContain('The machine "broken" is kept: run "machine provision broken" to retry, or "machine rm broken"');
    const ls = await machine(['ls']);
    expect(ls.stdout).toMatch(/broken\s+-\s+digitalocean\s+Error\s+Unknown\s+provisioning broken failed at cloud-init: .*; run "machine provision broken" to retry, or "machine rm broken"\n/);
    expect((await machine(['env', '--shell', 'bash', 'broken'])).code).toBe(1);
    const removed = await machine(['rm', '-y', 'broken']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await leaks()).toEqual([]);
    expect((await machine(['ls', '-q'])).stdout).toBe('');
  });
});
