import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** The machine (or a resource it needs) does not exist at the provider. */
export class NotFoundError extends MachineError {
  override readonly code = 'NOT_FOUND';
  /** What was not found, e.g. `droplet 1234`. */
  readonly resource: string | undefined;
  constructor(detail: string, options: MachineErrorOptions & { resource?: string } = {}) {
    super(detail, { hint: 'it may have been deleted outside machine; `machine rm -f` drops the local record', ...options });
    this.resource = options.resource;
  }
}
