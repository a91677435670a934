import { describe, expect, it } from 'vitest';
import { EmulatedShell } from './emulated-shell.ts';
import { createUbuntuFileSystem } from './ubuntu-image.ts';

function shell(): EmulatedShell {
  return new EmulatedShell(createUbuntuFileSystem({ hostname: 'node-1', authorizedKeys: ['ssh-ed25519 AAAA test'] }), { hostname: 'node-1', diskGb: 25 });
}

async function run(target: EmulatedShell, command: string, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await target.exec(command, {
    stdout: (data) => {
      stdout += data.toString();
    },
    stderr: (data) => {
      stderr += data.toString();
    },
    stdin: Promise.resolve(Buffer.from(stdin)),
  });
  return { code, stdout, stderr };
}

describe('emulated shell', () => {
  it('echo, hostname, uname, true/false and exit codes', async () => {
    const sh = shell();
    expect(await run(sh, 'echo "hello  world" it\\\'s')).toEqual({ code: 0, stdout: "hello  world it's\n", stderr: '' });
    expect((await run(sh, 'hostname')).stdout).toBe('node-1\n');
    expect((await run(sh, 'uname -a')).stdout).toMatch(/^Linux node-1 6\.8\.0-45-generic #45-Ubuntu .* x86_64 GNU\/Linux\n$/);
    expect((await run(sh, 'uname -r')).stdout).toBe('6.8.0-45-generic\n');
    expect((await run(sh, 'true')).code).toBe(0);
    expect((await run(sh, 'false')).code).toBe(1);
    expect((await run(sh, 'exit 7')).code).toBe(7);
    expect((await run(sh, 'echo a; exit 4; echo b')).stdout).toBe('a\n');
  });

  it('>&2 and 1>&2 send stdout to stderr; 2>&1 the other way', async () => {
    const sh = shell();
    expect(await run(sh, 'echo out; echo err >&2')).toEqual({ code: 0, stdout: 'out\n', stderr: 'err\n' });
    expect(await run(sh, 'echo err 1>&2')).toEqual({ code: 0, stdout: '', stderr: 'err\n' });
    expect(await run(sh, 'cat /nope 2>&1')).toEqual({ code: 1, stdout: 'cat: /nope: No such file or directory\n', stderr: '' });
    expect(await run(sh, 'echo kept 2>&2')).toEqual({ code: 0, stdout: 'kept\n', stderr: '' });
  });

  it('cat /etc/os-release and unknown commands', async () => {
    const sh = shell();
    const release = await run(sh, 'cat /etc/os-release');
    expect(release.stdout).toContain('VERSION_ID="24.04"');
    expect(await run(sh, 'docker version')).toEqual({ code: 127, stdout: '', stderr: 'sh: 1: docker: not found\n' });
    const missing = await run(sh, 'cat /nope');
    expect(missing).toEqual({ code: 1, stdout: '', stderr: 'cat: /nope: No such file or directory\n' });
  });

  it('redirection > and >>, pipes, tee, && and ||', async () => {
    const sh = shell();
    await run(sh, 'echo one > /tmp/f && echo two >> /tmp/f');
    expect((await run(sh, 'cat /tmp/f')).stdout).toBe('one\ntwo\n');
    await run(sh, 'echo three > /tmp/f');
    expect((await run(sh, 'cat < /tmp/f')).stdout).toBe('three\n');
    expect((await run(sh, 'false && echo no || echo yes')).stdout).toBe('yes\n');
    expect((await run(sh, 'echo piped | sudo tee /etc/piped')).stdout).toBe('piped\n');
    expect((await run(sh, 'cat /etc/piped')).stdout).toBe('piped\n');
    expect((await run(sh, 'cat /missing 2>/dev/null; echo $?')).stdout).toBe('1\n');
    expect((await run(sh, 'cat /missing 2>&1')).stdout).toBe('cat: /missing: No such file or directory\n');
    expect((await run(sh, 'cat', 'from stdin')).stdout).toBe('from stdin');
    expect((await run(sh, 'df -h / | tail -n 1')).stdout).toMatch(/^tmpfs /);
    expect((await run(sh, 'head -n 2 /etc/os-release')).stdout).toBe('PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\n');
  });

  it('sudo, sh -c and variables', async () => {
    const sh = shell();
    expect((await run(sh, 'sudo -n sh -c "echo $HOME; exit 3"')).code).toBe(3);
    expect((await run(sh, "sudo sh -c 'echo inner > /root/x' && cat /root/x")).stdout).toBe('inner\n');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell command with ${VAR} expansion, not a JS template.
    expect((await run(sh, 'NAME=value; echo "${NAME}-$USER"')).stdout).toBe('value-root\n');
    expect((await run(sh, 'whoami')).stdout).toBe('root\n');
    expect((await run(sh, 'echo "unterminated')).code).toBe(2);
  });

  it('ls [-lah] and df -h', async () => {
    const sh = shell();
    expect((await run(sh, 'ls /home')).stdout).toBe('ubuntu\n');
    const all = await run(sh, 'ls -a /root');
    expect(all.stdout).toBe('.  ..  .ssh\n');
    const long = await run(sh, 'ls -lah /etc');
    expect(long.stdout).toMatch(/^total /);
    expect(long.stdout).toMatch(/-rw-r--r-- 1 root root\s+\S+ \w{3} [ \d]\d \d\d:\d\d os-release\n/);
    expect(long.stdout).toMatch(/drwxr-xr-x \d+ root root 4\.0K .* ssh\n/);
    expect((await run(sh, 'ls /nope')).code).toBe(2);
    const df = await run(sh, 'df -h');
    expect(df.stdout.split('\n')[0]).toBe('Filesystem      Size  Used Avail Use% Mounted on');
    expect(df.stdout).toMatch(/\/dev\/vda1\s+25G\s+1\.7G\s+24G\s+7% \/\n/);
  });

  it('mkdir, touch, rm, test and mv', async () => {
    const sh = shell();
    await run(sh, 'mkdir -p /opt/app/bin && touch /opt/app/bin/run && mv /opt/app/bin/run /opt/app/run');
    expect((await run(sh, 'test -f /opt/app/run && echo file')).stdout).toBe('file\n');
    expect((await run(sh, '[ -d /opt/app/bin ]')).code).toBe(0);
    expect((await run(sh, 'rm -rf /opt/app; test -e /opt/app')).code).toBe(1);
  });

  it('install: modes, several sources into a directory, -d, missing sources; command -v', async () => {
    const sh = shell();
    await run(sh, 'mkdir -p /tmp/up && echo a > /tmp/up/a.pem && echo k > /tmp/up/k.pem && echo old > /etc/k.pem && chmod 0644 /etc/k.pem');
    expect(await run(sh, 'install -m 0644 /tmp/up/a.pem /tmp/up/k.pem /etc/ && install -m 0600 /tmp/up/k.pem /etc/k.pem')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(sh.fs.stat('/etc/a.pem').mode).toBe(0o644);
    expect(sh.fs.stat('/etc/k.pem').mode).toBe(0o600);
    expect(sh.fs.readFile('/etc/k.pem').toString()).toBe('k\n');
    expect(await run(sh, 'install /tmp/up/a.pem /tmp/up/k.pem /etc/a.pem')).toMatchObject({ code: 1, stderr: "install: target '/etc/a.pem' is not a directory\n" });
    expect(await run(sh, 'install -m 0644 /tmp/nope /etc/')).toMatchObject({ code: 1, stderr: "install: cannot stat '/tmp/nope': No such file or directory\n" });
    expect((await run(sh, 'install -m 0755 -d /etc/apt/keyrings && test -d /etc/apt/keyrings')).code).toBe(0);
    expect(sh.fs.stat('/etc/apt/keyrings').mode).toBe(0o755);
    expect(sh.fs.stat('/tmp/up/a.pem').mode).toBe(0o644); // the source is untouched
    expect(await run(sh, 'command -v echo')).toEqual({ code: 0, stdout: '/usr/bin/echo\n', stderr: '' });
    expect((await run(sh, 'command -v docker')).code).toBe(1);
    expect((await run(sh, 'DEBIAN_FRONTEND=noninteractive echo prefixed')).stdout).toBe('prefixed\n');
  });

  it('without a machine behind it: no systemd, no cloud-init, no network', async () => {
    const sh = shell();
    expect(await run(sh, 'systemctl restart docker')).toMatchObject({ code: 1, stderr: expect.stringContaining('System has not been booted with systemd') });
    expect((await run(sh, 'cloud-init status')).code).toBe(127);
    expect(await run(sh, 'curl -fsSL https://get.docker.com -o /tmp/x')).toEqual({ code: 6, stdout: '', stderr: 'curl: (6) Could not resolve host: get.docker.com\n' });
    expect((await run(sh, 'curl -fsL https://get.docker.com -o /tmp/x')).stderr).toBe('');
  });
});
