import { State } from '@machine/driver-core';

/**
 * `showvminfo --machinereadable` `VMState` values (VirtualBox 6.1-7.1 `MachineState` names as
 * VBoxManage prints them) onto the core State. `aborted` (the VM process died) counts as
 * Stopped, as in the reference; `stuck` (guru meditation) is an Error.
 */
const stateByVmState: Readonly<Record<string, State>> = {
  running: State.Running,
  livesnapshotting: State.Running,
  onlinesnapshotting: State.Running,
  deletingsnapshotlive: State.Running,
  teleporting: State.Running,
  paused: State.Paused,
  deletingsnapshotlivepaused: State.Paused,
  teleportingpausedvm: State.Paused,
  saved: State.Saved,
  'aborted-saved': State.Saved,
  poweroff: State.Stopped,
  aborted: State.Stopped,
  teleported: State.Stopped,
  settingup: State.Stopped,
  snapshotting: State.Stopped,
  restoringsnapshot: State.Stopped,
  deletingsnapshot: State.Stopped,
  starting: State.Starting,
  restoring: State.Starting,
  teleportingin: State.Starting,
  stopping: State.Stopping,
  saving: State.Stopping,
  stuck: State.Error,
};

/** The core State of a `VMState` value; unknown values are None. */
export function stateOfVmState(vmState: string | undefined): State {
  return (vmState === undefined ? undefined : stateByVmState[vmState.toLowerCase()]) ?? State.None;
}
