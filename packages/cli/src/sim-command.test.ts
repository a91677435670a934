import { describe, expect, it } from 'vitest';
import type { CliIO } from './io.ts';
import { simCommand } from './sim-mode.ts';

const io = (env: Record<string, string>) => ({ io: { env } as unknown as CliIO });

describe('simCommand (which simulator the CLI starts for --sim)', () => {
  it('runs the simulator from its sources when the CLI itself runs from sources, never a stale build', () => {
    // This test imports sim-mode.ts, so the CLI is "running from sources" here.
    const command = simCommand(io({}), '/tmp/state.json');
    expect(command).toContain('--conditions=@machine/source');
    expect(command.find((part) => part.endsWith('cli.ts'))).toMatch(/cloud-sim\/src\/cli\.ts$/);
    expect(command.slice(-2)).toEqual(['--state-file', '/tmp/state.json']);
  });

  it('MACHINE_SIM_COMMAND overrides the lookup', () => {
    expect(simCommand(io({ MACHINE_SIM_COMMAND: 'my-sim --fast' }), '/s.json')).toEqual(['my-sim', '--fast', '--state-file', '/s.json']);
  });
});
