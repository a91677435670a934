import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

/** Fleet commands (issue 20): create --count with bounded concurrency, and --filter on rm/start/stop/kill/restart. */
let cli: CliHarness;
beforeEach(async () => {
  cli = await cliHarness();
});
afterEach(async () => {
  await cli.close();
});

describe('create --count', () => {
  it('makes N machines from a name pattern, at most --parallel at a time, each line prefixed with its name', async () => {
    let running = 0;
    let most = 0;
    const runInstance = cli.cloud.runInstance.bind(cli.cloud);
    cli.cloud.runInstance = async (...args: Parameters<typeof runInstance>) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 50));
      try {
        return await runInstance(...args);
      } finally {
        running--;
      }
    };
    const created = await cli.run(['create', '-d', 'fake', '--no-provision', '--count', '5', '--parallel', '2', 'web-{n}']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('web-3: Machine "web-3" is ready');
    expect(created.stdout.trimEnd().split('\n').at(-1)).toBe('Created 5 of 5 machines: web-1, web-2, web-3, web-4, web-5.');
    expect(most).toBe(2);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('web-1\nweb-2\nweb-3\nweb-4\nweb-5\n');
    const plain = await cli.run(['create', '-d', 'fake', '--no-provision', '--count', '2', 'db']);
    expect(plain.stdout).toContain('Created 2 of 2 machines: db-1, db-2.');
  });

  it('one failure leaves the others and exits 1, naming it; a bad pattern is refused before anything is made', async () => {
    cli.cloud.failOn('instances.run', new Error('no capacity'), 1);
    const created = await cli.run(['create', '-d', 'fake', '--no-provision', '--count', '3', '--parallel', '1', 'n{n}']);
    expect(created.code).toBe(1);
    expect(created.stderr).toContain('n1: Error creating machine');
    expect(created.stderr).toContain('Failed: n1 (each says why above).');
    expect((await cli.run(['ls', '-q'])).stdout).toBe('n2\nn3\n');
    const bad = await cli.run(['create', '-d', 'fake', '--count', '2', 'Bad_{n}']);
    expect(bad).toMatchObject({ code: 1 });
    expect(bad.stderr).toContain('machine name: "Bad_1" may contain only');
    expect(cli.cloud.leaks().filter((leak) => leak.startsWith('instance')).length).toBe(2);
  });
});

describe('--filter on fleet commands', () => {
  it('stop, start and rm act on what the filter selects; names and --filter together are refused', async () => {
    expect((await cli.run(['create', '-d', 'fake', '--no-provision', '--count', '3', 'web-{n}'])).code).toBe(0);
    expect((await cli.run(['create', '-d', 'fake', '--no-provision', 'db1'])).code).toBe(0);
    expect((await cli.run(['stop', '--filter', 'name=^web-'])).code).toBe(0);
    expect((await cli.run(['ls', '--format', '{{.Name}} {{.State}}'])).stdout).toBe('db1 Running\nweb-1 Stopped\nweb-2 Stopped\nweb-3 Stopped\n');
    expect((await cli.run(['start', '--filter', 'state=stopped', '--filter', 'name=web-[12]'])).code).toBe(0);
    expect((await cli.run(['ls', '--filter', 'state=running', '-q'])).stdout).toBe('db1\nweb-1\nweb-2\n');
    expect(await cli.run(['stop', 'db1', '--filter', 'name=x'])).toMatchObject({ code: 1, stderr: 'give machine names or --filter, not both\n' });
    expect(await cli.run(['rm', '-y', '--filter', 'name=^nothing'])).toMatchObject({ code: 1, stderr: 'no machine matches --filter name=^nothing\n' });
    const removed = await cli.run(['rm', '-y', '--filter', 'name=^web-']);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('db1\n');
  });
});
