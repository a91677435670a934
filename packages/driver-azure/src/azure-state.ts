import { State } from '@machine/driver-core';

/** The statuses of a VM's instance view: `ProvisioningState/succeeded`, `PowerState/running`, … */
export interface InstanceViewStatusLike {
  code?: string;
}

const byPowerState: Readonly<Record<string, State>> = {
  starting: State.Starting,
  running: State.Running,
  stopping: State.Stopping,
  deallocating: State.Stopping,
  stopped: State.Stopped,
  deallocated: State.Stopped,
  unknown: State.None,
};

/**
 * Maps a VM's instance view onto the core State: the power state when there is one, else the
 * provisioning state (a VM being made is Starting, one being deleted is Stopping, a failed one is Error).
 */
export function stateFromInstanceView(statuses: readonly InstanceViewStatusLike[] | undefined): State {
  let power: string | undefined;
  let provisioning: string | undefined;
  for (const status of statuses ?? []) {
    const [kind, value] = (status.code ?? '').split('/');
    if (kind === 'PowerState' && value !== undefined) power = value.toLowerCase();
    if (kind === 'ProvisioningState' && value !== undefined) provisioning ??= value.toLowerCase();
  }
  if (provisioning === 'failed') return State.Error;
  if (provisioning === 'deleting') return State.Stopping;
  if (power !== undefined) return byPowerState[power] ?? State.None;
  if (provisioning === 'creating' || provisioning === 'updating') return State.Starting;
  return State.None;
}
