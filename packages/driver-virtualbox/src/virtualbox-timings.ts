import { defaultVBoxManageTimeouts, type VBoxManageTimeouts } from './vboxmanage.ts';

/** Poll and retry timing; tests shrink it. */
export interface VirtualBoxTimings {
  /** First delay between state polls, ms. */
  pollInterval: number;
  maxPollInterval: number;
  /** How long to wait for the guest's host-only address once SSH works, ms. */
  ipTimeout: number;
  /** Retries of a call that met a locked session. */
  lockRetries: number;
  lockRetryDelay: number;
  /** Time limits of one VBoxManage run (the execFile runner kills it after them). */
  vboxManage: VBoxManageTimeouts;
  /** A host-only lock file not refreshed for this long is left over from a killed process, ms. */
  lockStaleAfter: number;
  /** How long remove keeps retrying a VM whose session stays locked, ms. */
  deleteTimeout: number;
}

/** Production timing. */
export const defaultTimings: VirtualBoxTimings = {
  pollInterval: 500,
  maxPollInterval: 3000,
  ipTimeout: 120_000,
  lockRetries: 5,
  lockRetryDelay: 500,
  vboxManage: defaultVBoxManageTimeouts,
  lockStaleAfter: 60_000,
  deleteTimeout: 120_000,
};
