import { describe, expect, it } from 'vitest';
import { detectShell, goQuote, hintCommandLine, noProxyWith, renderSet, renderUnset, shellKind, usageHint } from './shell-env.ts';

const variables = [
  ['DOCKER_TLS_VERIFY', '1'],
  ['DOCKER_HOST', 'tcp://203.0.113.7:2376'],
  ['DOCKER_CERT_PATH', '/home/u/.machine/machines/web1'],
  ['DOCKER_MACHINE_NAME', 'web1'],
] as const;
const keys = variables.map(([key]) => key);

describe('machine env output, per shell (the reference\'s exact lines)', () => {
  it('bash, zsh, sh and unknown shells: export/unset and eval $(…)', () => {
    const expected = [
      'export DOCKER_TLS_VERIFY="1"',
      'export DOCKER_HOST="tcp://203.0.113.7:2376"',
      'export DOCKER_CERT_PATH="/home/u/.machine/machines/web1"',
      'export DOCKER_MACHINE_NAME="web1"',
      '# Run this command to configure your shell: ',
      '# eval $(machine env web1)',
      '',
    ].join('\n');
    for (const shell of ['bash', 'zsh', 'sh', 'ksh']) expect(renderSet(shell, variables, 'machine env web1')).toBe(expected);
    expect(renderUnset('bash', keys, 'machine env -u')).toBe(
      'unset DOCKER_TLS_VERIFY\nunset DOCKER_HOST\nunset DOCKER_CERT_PATH\nunset DOCKER_MACHINE_NAME\n# Run this command to configure your shell: \n# eval $(machine env -u)\n',
    );
  });

  it('fish: set -gx … ; and eval (…)', () => {
    expect(renderSet('fish', variables, 'machine env web1')).toBe(
      [
        'set -gx DOCKER_TLS_VERIFY "1";',
        'set -gx DOCKER_HOST "tcp://203.0.113.7:2376";',
        'set -gx DOCKER_CERT_PATH "/home/u/.machine/machines/web1";',
        'set -gx DOCKER_MACHINE_NAME "web1";',
        '# Run this command to configure your shell: ',
        '# eval (machine env web1)',
        '',
      ].join('\n'),
    );
    expect(renderUnset('fish', keys, 'machine env -u')).toBe(
      'set -e DOCKER_TLS_VERIFY;\nset -e DOCKER_HOST;\nset -e DOCKER_CERT_PATH;\nset -e DOCKER_MACHINE_NAME;\n# Run this command to configure your shell: \n# eval (machine env -u)\n',
    );
  });

  it('powershell: $Env:K = "V", Remove-Item Env:\\\\K and & … | Invoke-Expression', () => {
    expect(renderSet('powershell', variables, 'machine env --shell powershell web1')).toBe(
      [
        '$Env:DOCKER_TLS_VERIFY = "1"',
        '$Env:DOCKER_HOST = "tcp://203.0.113.7:2376"',
        '$Env:DOCKER_CERT_PATH = "/home/u/.machine/machines/web1"',
        '$Env:DOCKER_MACHINE_NAME = "web1"',
        '# Run this command to configure your shell: ',
        '# & machine env --shell powershell web1 | Invoke-Expression',
        '',
      ].join('\n'),
    );
    expect(renderUnset('powershell', ['DOCKER_HOST'], 'machine env --shell powershell -u')).toBe(
      'Remove-Item Env:\\\\DOCKER_HOST\n# Run this command to configure your shell: \n# & machine env --shell powershell -u | Invoke-Expression\n',
    );
  });

  it('cmd: SET K=V, SET K= and the REM … @FOR line (with its tab)', () => {
    expect(renderSet('cmd', variables, 'machine env --shell cmd web1')).toBe(
      [
        'SET DOCKER_TLS_VERIFY=1',
        'SET DOCKER_HOST=tcp://203.0.113.7:2376',
        'SET DOCKER_CERT_PATH=/home/u/.machine/machines/web1',
        'SET DOCKER_MACHINE_NAME=web1',
        'REM Run this command to configure your shell: ',
        'REM \t@FOR /f "tokens=*" %i IN (\'machine env --shell cmd web1\') DO @%i',
        '',
      ].join('\n'),
    );
    expect(renderUnset('cmd', ['DOCKER_HOST', 'DOCKER_TLS_VERIFY'], 'x')).toBe(
      'SET DOCKER_HOST=\nSET DOCKER_TLS_VERIFY=\nREM Run this command to configure your shell: \nREM \t@FOR /f "tokens=*" %i IN (\'x\') DO @%i\n',
    );
  });

  it('tcsh: setenv K "V"; unsetenv K; and eval `…` behind ":" comments', () => {
    expect(renderSet('tcsh', variables.slice(0, 2), 'machine env web1')).toBe(
      'setenv DOCKER_TLS_VERIFY "1";\nsetenv DOCKER_HOST "tcp://203.0.113.7:2376";\n: Run this command to configure your shell: \n: eval `machine env web1`\n',
    );
    expect(renderUnset('tcsh', ['DOCKER_HOST'], 'machine env -u')).toBe('unsetenv DOCKER_HOST;\n: Run this command to configure your shell: \n: eval `machine env -u`\n');
  });

  it('emacs: (setenv "K" "V"), (setenv "K" nil) and the with-temp-buffer hint', () => {
    expect(renderSet('emacs', variables.slice(3), 'machine env web1')).toBe(
      '(setenv "DOCKER_MACHINE_NAME" "web1")\n;; Run this command to configure your shell: \n;; (with-temp-buffer (shell-command "machine env web1" (current-buffer)) (eval-buffer))\n',
    );
    expect(renderUnset('emacs', ['DOCKER_HOST'], 'machine env -u')).toBe(
      '(setenv "DOCKER_HOST" nil)\n;; Run this command to configure your shell: \n;; (with-temp-buffer (shell-command "machine env -u" (current-buffer)) (eval-buffer))\n',
    );
  });

  it('the hint repeats how machine was run, quoting arguments with spaces', () => {
    expect(hintCommandLine(['-s', '/tmp/my store', 'env', '--shell', 'fish', 'web1'])).toBe('machine -s "/tmp/my store" env --shell fish web1');
    expect(usageHint('zsh', 'machine env web1')).toBe('# Run this command to configure your shell: \n# eval $(machine env web1)\n');
  });
});

describe('shell detection', () => {
  it('uses --shell, else the basename of $SHELL, else nothing (the caller fails like the reference)', () => {
    expect(detectShell('fish', { SHELL: '/bin/bash' })).toBe('fish');
    expect(detectShell(undefined, { SHELL: '/usr/local/bin/fish' })).toBe('fish');
    expect(detectShell(undefined, { SHELL: '/bin/zsh' })).toBe('zsh');
    expect(detectShell(undefined, { SHELL: '' })).toBeUndefined();
    expect(detectShell(undefined, {})).toBeUndefined();
    expect(shellKind('zsh')).toBe('posix');
    expect(shellKind('tcsh')).toBe('tcsh');
  });
});

describe('--no-proxy', () => {
  it('adds the machine IP to NO_PROXY, keeping existing entries, once', () => {
    expect(noProxyWith({}, '203.0.113.7')).toEqual(['NO_PROXY', '203.0.113.7']);
    expect(noProxyWith({ NO_PROXY: 'localhost,.corp' }, '203.0.113.7')).toEqual(['NO_PROXY', 'localhost,.corp,203.0.113.7']);
    expect(noProxyWith({ NO_PROXY: 'localhost,203.0.113.7' }, '203.0.113.7')).toEqual(['NO_PROXY', 'localhost,203.0.113.7']);
    // An entry that merely contains the IP as a substring is a different host.
    expect(noProxyWith({ NO_PROXY: '10.0.0.12' }, '10.0.0.1')).toEqual(['NO_PROXY', '10.0.0.12,10.0.0.1']);
  });

  it('prefers no_proxy when that one is set', () => {
    expect(noProxyWith({ no_proxy: 'a.example', NO_PROXY: 'b.example' }, '10.0.0.1')).toEqual(['no_proxy', 'a.example,10.0.0.1']);
  });
});

describe('machine config quoting', () => {
  it('quotes paths like Go\'s %q', () => {
    expect(goQuote('/home/u/.machine/machines/web1/ca.pem')).toBe('"/home/u/.machine/machines/web1/ca.pem"');
    expect(goQuote('C:\\Users\\u')).toBe('"C:\\\\Users\\\\u"');
  });
});
