import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type DriverDescriptor, throwIfAborted } from '@machine/driver-core';
import { fakeDriverFlags } from '@machine/driver-core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

let cli: CliHarness;
beforeEach(async () => {
  cli = await cliHarness();
});
afterEach(async () => {
  await cli.close();
});

/** The reference driver with a required credential, like a real cloud's token. */
function withRequiredToken(base: DriverDescriptor): DriverDescriptor {
  return {
    ...base,
    name: 'fakeauth',
    flags: base.flags.map((definition) => (definition.name === 'fake-token' ? { ...definition, required: true } : definition)),
  };
}

function oneLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0] as string;
}

describe('bad input gets one clear line and a non-zero exit code, before any API call', () => {
  it('unknown driver', async () => {
    const result = await cli.run(['create', '-d', 'nosuch', 'm1']);
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).toMatch(/^Driver "nosuch" not found: no package @machine\/driver-nosuch or machine-driver-nosuch/);
  });

  it('unknown flag, listing the known ones', async () => {
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', '--fake-colour', 'blue', 'm1']);
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).toContain('--fake-colour: unknown flag; known flags: --fake-region');
    expect(cli.cloud.totalCalls).toBe(0);
  });

  it('bad flag values, each named', async () => {
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', '--fake-size', 'huge', '--fake-wait-timeout', 'soon', 'm1']);
    expect(result.code).toBe(1);
    const line = oneLine(result.stderr);
    expect(line).toContain('--fake-size: "huge" is not one of small, large');
    expect(line).toContain('--fake-wait-timeout: expects a whole number');
  });

  it('a flag without its value', async () => {
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', 'm1', '--fake-region']);
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).toBe('--fake-region: needs a value');
  });

  it('invalid machine name', async () => {
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', 'Bad_Name']);
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).toContain('machine name: "Bad_Name"');
    expect(cli.cloud.totalCalls).toBe(0);
    expect(existsSync(join(cli.storage, 'machines', 'Bad_Name'))).toBe(false);
  });

  it('missing machine name, missing driver', async () => {
    expect(oneLine((await cli.run(['create', '-d', 'fake'])).stderr)).toContain('a machine name is required');
    expect(oneLine((await cli.run(['create', 'm1'])).stderr)).toContain('a driver is required');
  });

  it('duplicate name', async () => {
    expect((await cli.run(['create', '-d', 'fake', '--no-provision', 'twin'])).code).toBe(0);
    const calls = cli.cloud.totalCalls;
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', 'twin']);
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).toBe('Docker machine "twin" already exists');
    expect(cli.cloud.totalCalls).toBe(calls);
  });

  it('missing credentials, naming the flag and its env var', async () => {
    const auth = withRequiredToken(cli.drivers.fake as DriverDescriptor);
    cli.drivers.fakeauth = auth;
    const result = await cli.run(['create', '-d', 'fakeauth', 'm1']);
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).toBe('--fake-token: is required: pass --fake-token or set FAKE_TOKEN');
    expect(cli.cloud.totalCalls).toBe(0);
  });

  it('credentials come from the environment on later commands, never from disk', async () => {
    cli.drivers.fakeauth = withRequiredToken(cli.drivers.fake as DriverDescriptor);
    expect((await cli.run(['create', '-d', 'fakeauth', '--no-provision', 'm1'], { env: { FAKE_TOKEN: 'abcd-1234' } })).code).toBe(0);
    const without = await cli.run(['stop', 'm1']);
    expect(without.code).toBe(1);
    expect(oneLine(without.stderr)).toContain('--fake-token: is required');
    const ls = await cli.run(['ls']);
    expect(ls.stdout).toMatch(/m1\s+-\s+fakeauth\s+Error\s+Unknown\s+--fake-token: is required/);
    expect((await cli.run(['rm', '-y', 'm1'], { env: { FAKE_TOKEN: 'abcd-1234' } })).code).toBe(0);
    expect(cli.cloud.leaks()).toEqual([]);
  });

  it('machine not found, with the reference wording', async () => {
    for (const command of ['status', 'ip', 'url', 'inspect', 'stop', 'ssh', 'env']) {
      const result = await cli.run([command, 'ghost'], { env: { SHELL: '/bin/bash' } });
      expect(result.code, command).toBe(1);
      expect(oneLine(result.stderr), command).toMatch(/^Docker machine "ghost" does not exist\./);
    }
  });

  it('a corrupt config.json is reported in ls without hiding the other machines', async () => {
    expect((await cli.run(['create', '-d', 'fake', '--no-provision', 'good'])).code).toBe(0);
    await mkdir(join(cli.storage, 'machines', 'broken'), { recursive: true });
    await writeFile(join(cli.storage, 'machines', 'broken', 'config.json'), '{"driver": "fake", "conf');
    const ls = await cli.run(['ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/broken\s+-\s+not found\s+Error\s+Unknown\s+config\.json of machine "broken" is corrupt/);
    expect(ls.stdout).toMatch(/good\s+-\s+fake\s+Running/);
    const inspect = await cli.run(['inspect', 'broken']);
    expect(inspect.code).toBe(1);
    expect(oneLine(inspect.stderr)).toMatch(/config\.json of machine "broken" is corrupt .*; `machine rm -f broken` drops it$/);
    expect((await cli.run(['rm', '-f', 'broken'])).code).toBe(0);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('good\n');
  });

  it('unknown command and unknown option of a command', async () => {
    const command = await cli.run(['frobnicate']);
    expect(command.code).toBe(1);
    expect(command.stderr).toContain("unknown command 'frobnicate'");
    const option = await cli.run(['ls', '--bogus']);
    expect(option.code).toBe(1);
    expect(option.stderr).toContain("unknown option '--bogus'");
  });
});

describe('create failures', () => {
  it('a failed pre-create check exits 3 and leaves no record', async () => {
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', '--fake-open-port', 'not-a-port', 'pc']);
    expect(result.code).toBe(3);
    expect(oneLine(result.stderr)).toMatch(/^Error with pre-create check: ".*not-a-port/);
    expect(existsSync(join(cli.storage, 'machines', 'pc'))).toBe(false);
    expect(cli.cloud.totalCalls).toBe(0);
  });

  it('a create the provider fails is cleaned up by the driver and leaves no record', async () => {
    cli.cloud.failOn('instances.run', new Error('no capacity'));
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', 'cap']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Error creating machine: machine "cap": create: no capacity');
    expect(cli.cloud.leaks()).toEqual([]);
    expect(existsSync(join(cli.storage, 'machines', 'cap'))).toBe(false);
  });

  it('a failed create whose cleanup failed too is kept as failed, shown in ls, and removed by rm', async () => {
    cli.cloud.failOn('instances.run', new Error('no capacity'));
    cli.cloud.failOn('keys.delete', new Error('key API down'));
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', 'half']);
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).toMatch(/^Error creating machine: .*no capacity; still recorded: key key-\w+\. `machine rm half` deletes it$/);
    expect(cli.cloud.leaks()).toHaveLength(1);
    const ls = await cli.run(['ls']);
    expect(ls.stdout).toMatch(/half\s+-\s+fake\s+Error\s+Unknown\s+create failed: .*no capacity; `machine rm half` deletes what it made/);
    expect((await cli.run(['rm', '-y', 'half'])).code).toBe(0);
    expect(cli.cloud.leaks()).toEqual([]);
  });

  it('Ctrl-C aborts create through its signal: the driver removes what it made, exit 130', async () => {
    const controller = new AbortController();
    const importKey = cli.cloud.importKey.bind(cli.cloud);
    cli.cloud.importKey = async (publicKey: string) => {
      const id = await importKey(publicKey);
      controller.abort();
      return id;
    };
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', 'intr'], { signal: controller.signal });
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('create of "intr" was interrupted; nothing is left behind');
    expect(cli.cloud.leaks()).toEqual([]);
    expect(existsSync(join(cli.storage, 'machines', 'intr'))).toBe(false);
  });

  it('Ctrl-C during the pre-create check exits 130 with the interrupted message, not the check failure (3)', async () => {
    const controller = new AbortController();
    const fake = cli.drivers.fake as DriverDescriptor;
    const slowCheck: DriverDescriptor = {
      ...fake,
      name: 'slowcheck',
      createDriver: (options) => {
        const driver = fake.createDriver(options);
        return Object.assign(Object.create(driver) as typeof driver, {
          preCreateCheck: async (operation: { signal?: AbortSignal } = {}) => {
            controller.abort();
            throwIfAborted(operation.signal);
          },
        });
      },
    };
    cli.drivers.slowcheck = slowCheck;
    const result = await cli.run(['create', '-d', 'slowcheck', '--no-provision', 'early'], { signal: controller.signal });
    expect(result).toMatchObject({ code: 130, stderr: 'create of "early" was interrupted; nothing is left behind\n' });
    expect(cli.cloud.leaks()).toEqual([]);
    expect(existsSync(join(cli.storage, 'machines', 'early'))).toBe(false);
  });

  it('a create whose process was killed shows as Error in ls, and rm deletes what its journal lists', async () => {
    // What a killed create leaves: config.json in `creating` with its journal, and a stale lock.
    const keyId = await cli.cloud.importKey('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIbS0bkkXwPmRJ0Pz9jgkT4XBqUpWxjVQnNSK0N7OsPh dead');
    const firewallId = await cli.cloud.createFirewall([]);
    const recordedAt = new Date().toISOString();
    await cli.storeRecord({
      name: 'killed',
      status: 'creating',
      journal: [
        { kind: 'key', id: keyId, preExisting: false, recordedAt },
        { kind: 'firewall', id: firewallId, preExisting: false, recordedAt },
      ],
    });
    await cli.writeLock('killed', 999999);
    const ls = await cli.run(['ls']);
    expect(ls.stdout).toMatch(/killed\s+-\s+fake\s+Error\s+Unknown\s+create was interrupted; `machine rm killed` deletes what it made/);
    expect(cli.cloud.leaks()).toHaveLength(2);
    const rm = await cli.run(['rm', '-y', 'killed']);
    expect(rm.code).toBe(0);
    expect(cli.cloud.leaks()).toEqual([]);
    expect(existsSync(join(cli.storage, 'machines', 'killed'))).toBe(false);
  });

  it('a create still running in another process shows as Starting in ls', async () => {
    await cli.storeRecord({ name: 'inflight', status: 'creating' });
    await cli.writeLock('inflight', process.ppid);
    const ls = await cli.run(['ls']);
    expect(ls.stdout).toMatch(new RegExp(`inflight\\s+-\\s+fake\\s+Starting\\s+Unknown\\s+being created by process ${process.ppid}`));
    expect((await cli.run(['rm', '-y', 'inflight'])).stderr).toContain('machine "inflight" is busy');
  });

  it('--debug adds the stack trace of a failure', async () => {
    await cli.run(['create', '-d', 'fake', '--no-provision', 'dbg']);
    cli.cloud.failOn('instances.stop', new Error('stop refused'));
    const plain = await cli.run(['stop', 'dbg']);
    expect(oneLine(plain.stderr)).toContain('stop refused');
    cli.cloud.failOn('instances.stop', new Error('stop refused'));
    const debug = await cli.run(['--debug', 'stop', 'dbg']);
    expect(debug.stderr).toMatch(/stop refused[\s\S]*\n\s+at /);
  });

  it('a machine busy in another live process is refused', async () => {
    expect((await cli.run(['create', '-d', 'fake', '--no-provision', 'busy'])).code).toBe(0);
    await cli.writeLock('busy', process.ppid);
    const result = await cli.run(['stop', 'busy']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`machine "busy" is busy: process ${process.ppid} is working on it`);
    const record = JSON.parse(await readFile(join(cli.storage, 'machines', 'busy', 'config.json'), 'utf8'));
    expect(record.status).toBe('ready');
  });
});

describe('create --help', () => {
  it('lists the driver flags with env vars and defaults, from the schema', async () => {
    const result = await cli.run(['create', '-d', 'fake', '--no-provision', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Flags of driver "fake"');
    for (const definition of fakeDriverFlags) expect(result.stdout).toContain(`--${definition.name}`);
    expect(result.stdout).toMatch(/--fake-region <value>\s+Region of the fake cloud \[default: "local-1"\]/);
    expect(result.stdout).toMatch(/--fake-token <value>\s+API token \[secret: never stored; \$FAKE_TOKEN\]/);
    expect(result.stdout).toMatch(/--fake-size <value>\s+Instance size \[one of: small, large; default: "small"\]/);
  });
});
