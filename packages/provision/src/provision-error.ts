import { MachineError, type MachineErrorOptions } from '@machine/driver-core';

/** The steps of provisioning a Docker host, in order. */
export type ProvisionStep =
  | 'connect'
  | 'cloud-init'
  | 'install-engine'
  | 'upgrade-engine'
  | 'upload-certificates'
  | 'restart-docker'
  | 'wait-docker'
  | 'docker-version';

/** Options for {@link ProvisionError}. */
export interface ProvisionErrorOptions extends MachineErrorOptions {
  /** The step that failed. */
  step: ProvisionStep | (string & {});
  /** The last lines of the machine's provisioning log (`/var/log/cloud-init-output.log` or the install output). */
  logTail?: readonly string[];
  /** Whether trying again may work (a timeout, a refused connection). */
  retryable?: boolean;
}

/**
 * Turning a machine into a Docker host failed at one step. The message is one line,
 * `provisioning web1 failed at restart-docker: …`; the machine's log tail is in {@link logTail}.
 */
export class ProvisionError extends MachineError {
  override readonly code = 'PROVISION';
  override readonly isRetryable: boolean;
  /** The step that failed (see {@link ProvisionStep}). */
  readonly step: string;
  /** The last lines of the provisioning log on the machine, oldest first (may be empty). */
  readonly logTail: string[];

  constructor(detail: string, options: ProvisionErrorOptions) {
    super(oneLine(detail), { operation: 'provision', ...options });
    this.step = options.step;
    this.logTail = [...(options.logTail ?? [])];
    this.isRetryable = options.retryable ?? false;
    const who = this.machine === undefined ? '' : ` ${this.machine}`;
    const hint = this.hint === undefined ? '' : ` (${this.hint})`;
    this.message = `provisioning${who} failed at ${options.step}: ${this.detail}${hint}`;
  }
}

/** Joins a multi-line text into one line. */
function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, '; ');
}
