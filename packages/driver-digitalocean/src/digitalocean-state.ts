import { State } from '@machine/driver-core';

/**
 * A droplet's `status` as the machine State:
 * - `new` → Starting (being built), `active` → Running, `off` → Stopped;
 * - `archive` → Error: DigitalOcean archives droplets of suspended or locked accounts; the user
 *   cannot power them on, so reporting Stopped would invite a `start` that cannot work;
 * - anything else (a status DigitalOcean may add later) → None.
 */
export function stateOfDropletStatus(status: string | null | undefined): State {
  switch (status) {
    case 'new':
      return State.Starting;
    case 'active':
      return State.Running;
    case 'off':
      return State.Stopped;
    case 'archive':
      return State.Error;
    default:
      return State.None;
  }
}

/** Droplet action types that power a droplet off, and those that bring it up. */
const stoppingActions = new Set(['shutdown', 'power_off']);
const startingActions = new Set(['power_on', 'reboot', 'power_cycle']);

/**
 * The State while a power action of this driver is still in progress: Stopping for
 * `shutdown`/`power_off`, Starting for `power_on`/`reboot`/`power_cycle`; otherwise the droplet's.
 */
export function stateWithPendingAction(dropletState: State, actionType: string | undefined, actionStatus: string | null | undefined): State {
  if (actionStatus !== 'in-progress' || actionType === undefined) return dropletState;
  if (stoppingActions.has(actionType)) return State.Stopping;
  if (startingActions.has(actionType)) return State.Starting;
  return dropletState;
}
