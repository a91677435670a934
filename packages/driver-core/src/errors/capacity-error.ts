import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/**
 * The provider has no capacity for the request right now (EC2 `InsufficientInstanceCapacity`,
 * Compute Engine `ZONE_RESOURCE_POOL_EXHAUSTED`, Azure `AllocationFailed`/`SkuNotAvailable`). Not a
 * quota: raising a limit does not help; another zone or size, or the same one later, may.
 */
export class CapacityError extends MachineError {
  override readonly code = 'CAPACITY';
  /** The provider's own error code, e.g. `InsufficientInstanceCapacity`. */
  readonly providerCode: string | undefined;
  constructor(detail: string, options: MachineErrorOptions & { providerCode?: string } = {}) {
    super(detail, { hint: 'the provider has no capacity for this size in this zone right now: try another zone/size or later', ...options });
    this.providerCode = options.providerCode;
  }
}
