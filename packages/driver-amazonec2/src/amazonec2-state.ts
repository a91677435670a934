import { State } from '@machine/driver-core';

/** EC2 instance states (`InstanceStateName`) onto the core states; `terminated` means the machine is gone. */
export const stateByInstanceState: Readonly<Record<string, State>> = {
  pending: State.Starting,
  running: State.Running,
  stopping: State.Stopping,
  'shutting-down': State.Stopping,
  stopped: State.Stopped,
};

/** The core state of an EC2 instance state name, or undefined when the instance is terminated (gone). */
export function toMachineState(name: string | undefined): State | undefined {
  if (name === 'terminated') return undefined;
  if (name === undefined) return State.None;
  return stateByInstanceState[name] ?? State.Error;
}
