import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from '../test-support/run-cli.ts';

/** What `machine upgrade` refuses before it touches a machine (the upgrade itself: upgrade.e2e.test.ts on the simulator). */
describe('machine upgrade refuses what it cannot upgrade, one line per machine', () => {
  let cli: CliHarness;
  beforeEach(async () => {
    cli = await cliHarness();
  });
  afterEach(async () => {
    await cli.close();
  });

  it('a machine without an engine made by machine, one whose provisioning failed, one not created completely, an unknown one', async () => {
    await cli.storeRecord({ name: 'bare', provision: { engine: {} as never, serverCertSans: [], dockerPort: 2376, state: 'skipped' } });
    await cli.storeRecord({ name: 'broken', provision: { engine: {} as never, serverCertSans: [], dockerPort: 2376, state: 'failed', error: 'boom' } });
    await cli.storeRecord({ name: 'half', status: 'creating' });
    const result = await cli.run(['upgrade', 'bare', 'broken', 'half', 'nosuch']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n').filter((line) => line !== '').sort()).toEqual(
      [
        'machine "bare" has no Docker Engine installed by machine to upgrade; `machine provision bare` installs one',
        'Docker Engine on "broken" was not provisioned completely: `machine provision broken` first',
        'machine "half" was not created completely; `machine rm half` deletes what it made',
        'Docker machine "nosuch" does not exist. Use "machine ls" to list machines. Use "machine create" to add a new one.',
      ].sort(),
    );
  });

  it('an invalid name stops it before anything is read', async () => {
    const result = await cli.run(['upgrade', 'ok', '../etc']);
    expect(result).toMatchObject({ code: 1, stdout: '' });
    expect(result.stderr).toContain('machine name: "../etc" may contain only');
  });
});
