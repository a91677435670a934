import { State } from '@machine/driver-core';

/**
 * EC2 instance states (`InstanceStateName`) onto the core states. `shutting-down` and `terminated`
 * mean the machine is gone: a terminating instance never comes back, and EC2 shows it as
 * `shutting-down` for a while after it was terminated (also outside the tool).
 */
export const stateByInstanceState: Readonly<Record<string, State>> = {
  pending: State.Starting,
  running: State.Running,
  stopping: State.Stopping,
  stopped: State.Stopped,
};

/** The core state of an EC2 instance state name, or undefined when the instance is terminating or terminated (gone). */
export function toMachineState(name: string | undefined): State | undefined {
  if (name === 'terminated' || name === 'shutting-down') return undefined;
  if (name === undefined) return State.None;
  return stateByInstanceState[name] ?? State.Error;
}
