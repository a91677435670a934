import { State } from '@machine/driver-core';

/**
 * `showvminfo --machinereadable` `VMState` values onto the core State: the short names VBoxManage's
 * `machineStateToName` prints for every `MachineState` (VirtualBox 6.1-7.1). `aborted` (the VM
 * process died) counts as Stopped, as in the reference; `gurumeditation` (`MachineState_Stuck`: the
 * VM process is alive but the guest hit a fatal error and holds the session) is an Error.
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
  gurumeditation: State.Error,
};

/** The core State of a `VMState` value; unknown values are None. */
export function stateOfVmState(vmState: string | undefined): State {
  return (vmState === undefined ? undefined : stateByVmState[vmState.toLowerCase()]) ?? State.None;
}
