/**
 * The states a machine can be in, with the reference's names (libmachine `state.State`).
 * Every driver maps its provider's states onto these.
 */
export const State = {
  /** Unknown or not reported (the reference printed an empty string). */
  None: 'None',
  Running: 'Running',
  Paused: 'Paused',
  Saved: 'Saved',
  Stopped: 'Stopped',
  Stopping: 'Stopping',
  Starting: 'Starting',
  Error: 'Error',
  /** Set by hosts (e.g. `machine ls`) when a driver did not answer in time. */
  Timeout: 'Timeout',
} as const;

/** One of the {@link State} values. */
export type State = (typeof State)[keyof typeof State];

/** All states, in declaration order. */
export const allStates: readonly State[] = Object.values(State);

/** True when `value` is one of the {@link State} strings. */
export function isState(value: unknown): value is State {
  return typeof value === 'string' && (allStates as readonly string[]).includes(value);
}
