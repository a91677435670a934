import { combineUserData } from '@machine/driver-core';
import { describe, expect, it } from 'vitest';
import { expandWord, parseCommandLine } from '../shell/shell-parser.ts';
import { planBoot, runcmdLine } from './cloud-config.ts';
import { splitUserData } from './user-data.ts';

describe('splitUserData', () => {
  it('types plain user data by its first line', () => {
    expect(splitUserData('#cloud-config\nruncmd: []\n')).toEqual([{ contentType: 'text/cloud-config', content: '#cloud-config\nruncmd: []\n' }]);
    expect(splitUserData('#!/bin/bash\necho hi\n')[0]?.contentType).toBe('text/x-shellscript');
    expect(splitUserData('just text')[0]?.contentType).toBe('text/plain');
  });

  it('splits CRLF multipart with quoted boundaries, base64 and quoted-printable parts, nested archives', () => {
    const nested = ['Content-Type: multipart/mixed; boundary=inner', '', '--inner', 'Content-Type: text/x-shellscript', '', '#!/bin/sh', 'echo nested', '--inner--', ''].join('\n');
    const archive = [
      'Content-Type: multipart/mixed; boundary="==outer=="',
      'MIME-Version: 1.0',
      '',
      'preamble is ignored',
      '--==outer==',
      'Content-Type: text/cloud-config; charset="utf-8"',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="config.yaml"',
      '',
      Buffer.from('#cloud-config\nruncmd: [ls]\n').toString('base64'),
      '--==outer==',
      'Content-Type: text/plain',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      '#!/bin/sh',
      'echo caf=C3=A9 =',
      'done',
      '--==outer==',
      nested,
      '--==outer==--',
      'epilogue is ignored',
    ].join('\r\n');
    expect(splitUserData(archive)).toEqual([
      { contentType: 'text/cloud-config', content: '#cloud-config\nruncmd: [ls]\n', filename: 'config.yaml' },
      { contentType: 'text/x-shellscript', content: '#!/bin/sh\necho café done' },
      { contentType: 'text/x-shellscript', content: '#!/bin/sh\necho nested' },
    ]);
  });
});

describe('planBoot', () => {
  it('merges cloud-config parts (write_files and runcmd append, ssh_keys merge) and keeps scripts', () => {
    const first = '#cloud-config\nssh_keys:\n  ed25519_private: KEY\nwrite_files:\n  - path: /a\n    content: one\n    permissions: 0600\nruncmd:\n  - [echo, first]\n';
    const second = '#cloud-config\nssh_keys:\n  ed25519_public: PUB\nwrite_files:\n  - path: /b\n    encoding: b64\n    content: dHdv\n    permissions: "0755"\n    owner: ubuntu:ubuntu\n    append: true\nruncmd:\n  - echo second\n';
    const plan = planBoot(combineUserData([first, second, '#!/bin/sh\ntrue\n']));
    expect(plan.errors).toEqual([]);
    expect(plan.sshKeys).toEqual({ ed25519_private: 'KEY', ed25519_public: 'PUB' });
    expect(plan.writeFiles.map((file) => [file.path, file.content.toString(), file.permissions, file.owner, file.append])).toEqual([
      ['/a', 'one', 0o600, 'root:root', false],
      ['/b', 'two', 0o755, 'ubuntu:ubuntu', true],
    ]);
    expect(plan.runcmd).toEqual([['echo', 'first'], 'echo second']);
    expect(plan.scripts).toEqual([{ name: 'part-3', content: '#!/bin/sh\ntrue' }]); // the newline before a MIME delimiter belongs to it
  });

  it("without a merge type a later part's lists replace earlier ones whole, as cloud-init's dict(replace)+list()+str() default does", () => {
    const part = (body: string, headers: string[] = []) => ['--b', 'Content-Type: text/cloud-config', ...headers, '', body].join('\n');
    const archive = (...parts: string[]) => ['Content-Type: multipart/mixed; boundary="b"', '', ...parts, '--b--', ''].join('\n');
    const first = '#cloud-config\nssh_keys:\n  ed25519_private: FIRST\nruncmd:\n  - echo install-engine\n';
    const second = '#cloud-config\nssh_keys:\n  ed25519_private: SECOND\nruncmd:\n  - echo users-own\n';
    const replaced = planBoot(archive(part(first), part(second)));
    expect(replaced.runcmd).toEqual(['echo users-own']);
    expect(replaced.sshKeys).toEqual({ ed25519_private: 'SECOND' });
    const appended = planBoot(archive(part(first), part(second, ['Merge-Type: list(append)+dict(no_replace,recurse_list)+str()'])));
    expect(appended.runcmd).toEqual(['echo install-engine', 'echo users-own']);
    expect(appended.sshKeys).toEqual({ ed25519_private: 'FIRST' });
    const viaBody = planBoot(archive(part(first), part(`${second}merge_how:\n  - name: list\n    settings: [append]\n`)));
    expect(viaBody.runcmd).toEqual(['echo install-engine', 'echo users-own']);
  });

  it("driver-core's combineUserData keeps both the provisioning runcmd and the user's own", () => {
    const plan = planBoot(combineUserData(['#cloud-config\nruncmd:\n  - echo install-engine\n', '#cloud-config\nruncmd:\n  - echo users-own\n']));
    expect(plan.runcmd).toEqual(['echo install-engine', 'echo users-own']);
  });

  it('reports what cloud-init would refuse, and nothing for empty user data', () => {
    expect(planBoot(undefined)).toMatchObject({ errors: [], runcmd: [], writeFiles: [] });
    expect(planBoot('#cloud-config\nruncmd: [unclosed\n').errors[0]).toMatch(/^Failed loading yaml blob/);
    expect(planBoot('#cloud-config\nwrite_files:\n  - content: x\n').errors[0]).toMatch(/'path' is a required property/);
    expect(planBoot('#cloud-config\nruncmd: echo\n').errors[0]).toMatch(/runcmd: is not of type array/);
    expect(planBoot('#include\nhttps://example.test/x\n').skipped).toHaveLength(1);
  });

  it("quotes argv runcmd entries so the shell reads back the same words (cloud-init's '\"'\"' quoting)", () => {
    const argv = ['sh', '-c', "curl -fsSL 'https://get.docker.com' -o /tmp/install-docker.sh && sh /tmp/install-docker.sh", 'it\'s "quoted" $HOME'];
    const line = runcmdLine(argv);
    expect(line).toBe(`'sh' '-c' 'curl -fsSL '"'"'https://get.docker.com'"'"' -o /tmp/install-docker.sh && sh /tmp/install-docker.sh' 'it'"'"'s "quoted" $HOME'`);
    const [command] = parseCommandLine(line).items[0]!.pipeline.commands;
    expect(command!.words.map((word) => expandWord(word, { HOME: '/root' }))).toEqual(argv);
  });
});
